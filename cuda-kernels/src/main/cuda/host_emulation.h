// Runs amalgam_kernels.cu on the CPU for tests: the CUDA built-ins the kernels use, as plain
// C++. A launch is a loop over blocks and threads (see emulated_device.cpp), one thread after
// another, so this checks the kernels' arithmetic and indexing, not their concurrency: the
// kernels are written so that their result does not depend on thread order (no in-place
// reads of other elements, integer atomics only), and anything that would (shared memory,
// warp shuffles) must not be used without a GPU-only test.
//
// Compile with -ffp-contract=off so that no a*b+c is fused, matching --fmad=false.
#ifndef AMALGAM_HOST_EMULATION_H
#define AMALGAM_HOST_EMULATION_H

#include <cmath>
#include <cstdint>
#include <cstring>

#define __global__
#define __device__
#define __forceinline__ inline

struct amalgam_dim3 {
    unsigned int x, y, z;
};

// Set by the launch loop before each emulated thread runs.
extern thread_local amalgam_dim3 threadIdx;
extern thread_local amalgam_dim3 blockIdx;
extern thread_local amalgam_dim3 blockDim;
extern thread_local amalgam_dim3 gridDim;

inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

inline float __uint_as_float(unsigned int u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// Round-to-nearest IEEE operations: what x86-64 SSE float and double arithmetic does.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
// rint, scalbn and ilogb are exact operations, in CUDA as in <cmath>.
using std::ilogb;
using std::rint;
using std::scalbn;

// One emulated thread runs at a time, so an atomic is the plain operation.
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {
    unsigned long long old = *address;
    *address = old + value;
    return old;
}

inline unsigned int atomicOr(unsigned int* address, unsigned int value) {
    unsigned int old = *address;
    *address = old | value;
    return old;
}

#endif
