// Amalgam's merge kernels for CUDA: the same arithmetic as the Java kernels in
// dev.amalgam.kernels, so a GPU executor writes the bytes a CPU executor writes.
//
// Rules every kernel here follows (docs/gpu.md has the reasons):
// - float32 arithmetic only through __fadd_rn/__fsub_rn/__fmul_rn/__fdiv_rn, which are never
//   contracted into fused multiply-adds (the build also passes --fmad=false);
// - models are combined in config order, inside one thread; nothing that reaches the output
//   depends on thread order: the only atomics are integer counts (histograms, exact-sum bins,
//   kept and conflict counters), which commute exactly;
// - one thread per element (or per tile, where a kernel says so), no shared memory and no
//   warp intrinsics, so that host_emulation.h can run the same source on the CPU in tests;
// - a kernel that reads other elements than its own never writes in place (src != dst).
//
// Every kernel is launched 1-D with enough threads for its element (or tile) count; threads
// past the end return at once.

#ifdef AMALGAM_HOST_EMULATION
#include "host_emulation.h"
#endif

typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#define AMALGAM_DTYPE_F32 0
#define AMALGAM_DTYPE_F16 1
#define AMALGAM_DTYPE_BF16 2

// Elements per tile for equal-rank prefixes (top-k and band rules) and per-tile sums.
#define AMALGAM_RANK_TILE 256
#define AMALGAM_SUM_TILE 1024
// Lanes of the integer counters, so that neighbouring blocks do not contend for one address.
#define AMALGAM_LANES 64

__device__ __forceinline__ i64 amalgam_index() {
    return (i64) blockIdx.x * (i64) blockDim.x + (i64) threadIdx.x;
}

__device__ __forceinline__ u32 amalgam_lane() {
    return blockIdx.x & (AMALGAM_LANES - 1);
}

__device__ __forceinline__ u32 magnitude_bits(float v) {
    return __float_as_uint(v) & 0x7fffffffu;
}

// ---- decode and encode -------------------------------------------------------------------

__device__ __forceinline__ float half_to_float(u32 h) {
    u32 sign = (h & 0x8000u) << 16;
    u32 exponent = (h >> 10) & 0x1fu;
    u32 mantissa = h & 0x3ffu;
    if (exponent == 0x1fu) {
        return __uint_as_float(sign | 0x7f800000u | (mantissa << 13));
    }
    if (exponent == 0) {
        // mantissa * 2^-24 is exact in float32 (as in ElementCodec.halfToFloat).
        float magnitude = __fmul_rn((float) mantissa, 5.9604644775390625e-8f);
        return sign == 0 ? magnitude : -magnitude;
    }
    return __uint_as_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

__device__ __forceinline__ unsigned short float_to_bfloat16(float f) {
    u32 bits = __float_as_uint(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        return (unsigned short) ((bits >> 16) | 0x0040u);
    }
    u32 rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
    return (unsigned short) (rounded >> 16);
}

__device__ __forceinline__ unsigned short float_to_half(float f) {
    u32 bits = __float_as_uint(f);
    u32 sign = (bits >> 16) & 0x8000u;
    u32 abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) {
        return (unsigned short) (sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    }
    if (abs >= 0x47800000u) {
        return (unsigned short) (sign | 0x7c00u);
    }
    if (abs >= 0x38800000u) {
        u32 v = abs - (112u << 23);
        v = v + 0xfffu + ((v >> 13) & 1u);
        return (unsigned short) (sign | (v >> 13));
    }
    u32 exponent = abs >> 23;
    if (exponent < 102u) {
        return (unsigned short) sign;
    }
    u32 mantissa = (abs & 0x7fffffu) | 0x800000u;
    u32 shift = 126u - exponent;
    u32 n = mantissa >> shift;
    u32 rem = mantissa & ((1u << shift) - 1u);
    u32 half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (n & 1u) == 1u)) {
        n++;
    }
    return (unsigned short) (sign | n);
}

extern "C" __global__ void amalgam_decode(const void* src, int dtype, float* dst, int n) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    if (dtype == AMALGAM_DTYPE_F32) {
        dst[i] = ((const float*) src)[i];
    } else if (dtype == AMALGAM_DTYPE_BF16) {
        dst[i] = __uint_as_float(((u32) ((const unsigned short*) src)[i]) << 16);
    } else {
        dst[i] = half_to_float((u32) ((const unsigned short*) src)[i]);
    }
}

extern "C" __global__ void amalgam_encode(const float* src, int dtype, void* dst, int n) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    if (dtype == AMALGAM_DTYPE_F32) {
        ((float*) dst)[i] = src[i];
    } else if (dtype == AMALGAM_DTYPE_BF16) {
        ((unsigned short*) dst)[i] = float_to_bfloat16(src[i]);
    } else {
        ((unsigned short*) dst)[i] = float_to_half(src[i]);
    }
}

// ---- block-quantized inputs ----------------------------------------------------------------

#define AMALGAM_DTYPE_F8_E4M3 3
#define AMALGAM_DTYPE_F8_E5M2 4

// An FP8 byte as float32, exactly (as Float8's tables): bits are built, never rounded.
__device__ __forceinline__ float fp8_to_float(u32 b, int dtype) {
    u32 sign = (b & 0x80u) << 24;
    if (dtype == AMALGAM_DTYPE_F8_E4M3) {
        u32 exponent = (b >> 3) & 0xfu;
        u32 mantissa = b & 0x7u;
        if (exponent == 0xfu && mantissa == 0x7u) {
            return __uint_as_float(0x7fc00000u);
        }
        if (exponent == 0) {
            float magnitude = __fmul_rn((float) mantissa, 1.953125e-3f); // m * 2^-9
            return sign == 0 ? magnitude : -magnitude;
        }
        return __uint_as_float(sign | ((exponent + 120u) << 23) | (mantissa << 20));
    }
    u32 exponent = (b >> 2) & 0x1fu;
    u32 mantissa = b & 0x3u;
    if (exponent == 0x1fu) {
        return __uint_as_float(mantissa == 0 ? (sign | 0x7f800000u) : 0x7fc00000u);
    }
    if (exponent == 0) {
        float magnitude = __fmul_rn((float) mantissa, 1.52587890625e-5f); // m * 2^-16
        return sign == 0 ? magnitude : -magnitude;
    }
    return __uint_as_float(sign | ((exponent + 112u) << 23) | (mantissa << 21));
}

// FP8 weights times their block's scale (BlockScales.Fp8): the scales hold grid rows
// [first_grid_row, ...) of grid_cols each; a 3-D tensor is a stack of matrices of matrix_rows rows.
extern "C" __global__ void amalgam_dequant_fp8(const unsigned char* src, int dtype, const float* scales,
                                               i64 first_grid_row, int grid_cols, int block_rows, int block_cols,
                                               i64 matrix_rows, int cols, i64 chunk_start, float* dst, int n) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    i64 e = chunk_start + i;
    i64 row = e / cols;
    int col = (int) (e % cols);
    i64 grid_rows_per_matrix = (matrix_rows + block_rows - 1) / block_rows;
    i64 grid_row = row / matrix_rows * grid_rows_per_matrix + (row % matrix_rows) / block_rows;
    float scale = scales[(grid_row - first_grid_row) * grid_cols + col / block_cols];
    dst[i] = __fmul_rn(fp8_to_float((u32) src[i], dtype), scale);
}

// MXFP4 (BlockScales.Mxfp4): two E2M1 values a byte, low nibble first, 32 values a block scaled by
// 2^(e - 127); the chunk starts on a block boundary.
extern "C" __global__ void amalgam_dequant_mxfp4(const unsigned char* src, const unsigned char* exponents,
                                                 float* dst, int n) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    u32 packed = (u32) src[i >> 1];
    u32 nibble = (i & 1) == 0 ? (packed & 0xfu) : (packed >> 4);
    u32 magnitude_code = nibble & 0x7u;
    // 0, 0.5, 1, 1.5, 2, 3, 4, 6
    float magnitude = magnitude_code < 2u ? __fmul_rn((float) magnitude_code, 0.5f)
            : magnitude_code < 4u ? __fmul_rn((float) (magnitude_code), 0.5f)
            : magnitude_code < 6u ? (float) (magnitude_code - 2u) : (float) ((magnitude_code - 5u) * 2u + 2u);
    float value = (nibble & 0x8u) != 0 ? -magnitude : magnitude;
    u32 e = (u32) exponents[i >> 5];
    float scale = e == 255u ? __uint_as_float(0x7fc00000u) : e == 0 ? __uint_as_float(0x00400000u)
            : __uint_as_float(e << 23);
    dst[i] = __fmul_rn(value, scale);
}

// ---- deltas and statistics ----------------------------------------------------------------

// dst = x - base; dst may be x (each thread touches only its own element).
extern "C" __global__ void amalgam_delta(const float* x, const float* base, float* dst, int n) {
    i64 i = amalgam_index();
    if (i < n) {
        dst[i] = __fsub_rn(x[i], base[i]);
    }
}

// One thread per tile of AMALGAM_SUM_TILE elements: the sum of squares of its tile, in
// element order, for the run report only (the host adds the tiles in order).
extern "C" __global__ void amalgam_square_tiles(const float* d, int n, double* tiles) {
    i64 t = amalgam_index();
    i64 from = t * AMALGAM_SUM_TILE;
    if (from >= n) {
        return;
    }
    i64 to = from + AMALGAM_SUM_TILE < n ? from + AMALGAM_SUM_TILE : n;
    double s = 0.0;
    for (i64 j = from; j < to; j++) {
        double v = (double) d[j];
        s = __dadd_rn(s, __dmul_rn(v, v));
    }
    tiles[t] = s;
}

// One thread per tile: the dot product of two models' deltas, (x - base) . (y - base), over
// its tile in element order, for the run report's cosine similarities only.
extern "C" __global__ void amalgam_delta_dot_tiles(const float* x, const float* y, const float* base, int n,
                                                   double* tiles) {
    i64 t = amalgam_index();
    i64 from = t * AMALGAM_SUM_TILE;
    if (from >= n) {
        return;
    }
    i64 to = from + AMALGAM_SUM_TILE < n ? from + AMALGAM_SUM_TILE : n;
    double s = 0.0;
    for (i64 j = from; j < to; j++) {
        double a = (double) __fsub_rn(x[j], base[j]);
        double b = (double) __fsub_rn(y[j], base[j]);
        s = __dadd_rn(s, __dmul_rn(a, b));
    }
    tiles[t] = s;
}

extern "C" __global__ void amalgam_histogram_high(const float* d, int n, u64* histogram) {
    i64 i = amalgam_index();
    if (i < n) {
        atomicAdd(&histogram[magnitude_bits(d[i]) >> 16], 1ULL);
    }
}

extern "C" __global__ void amalgam_histogram_low(const float* d, int n, u32 high_bucket, u64* histogram) {
    i64 i = amalgam_index();
    if (i < n) {
        u32 bits = magnitude_bits(d[i]);
        if ((bits >> 16) == high_bucket) {
            atomicAdd(&histogram[bits & 0xffffu], 1ULL);
        }
    }
}

// Per tile of AMALGAM_RANK_TILE elements: how many have |d| bits equal to value_bits.
extern "C" __global__ void amalgam_count_equal_tiles(const float* d, int n, u32 value_bits, u64* tiles) {
    i64 i = amalgam_index();
    if (i < n && magnitude_bits(d[i]) == value_bits) {
        atomicAdd(&tiles[i / AMALGAM_RANK_TILE], 1ULL);
    }
}

// One thread: turns tile counts into exclusive prefixes starting at `start`.
extern "C" __global__ void amalgam_exclusive_prefix(u64* tiles, int count, u64 start) {
    if (amalgam_index() != 0) {
        return;
    }
    u64 running = start;
    for (int t = 0; t < count; t++) {
        u64 c = tiles[t];
        tiles[t] = running;
        running += c;
    }
}

// Exact sums of |d| (see ExactSum.java): significands added into the bin of their exponent,
// in AMALGAM_LANES copies of the 256 bins; flags[0] infinity seen, flags[1] NaN seen.
extern "C" __global__ void amalgam_exact_sum(const float* d, int n, u64* bins, u32* flags) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    u32 bits = magnitude_bits(d[i]);
    u32 exponent = bits >> 23;
    if (exponent == 0xffu) {
        atomicOr(&flags[(bits & 0x7fffffu) != 0 ? 1 : 0], 1u);
        return;
    }
    u32 significand = (bits & 0x7fffffu) | (exponent == 0 ? 0u : 0x800000u);
    atomicAdd(&bins[amalgam_lane() * 256u + exponent], (u64) significand);
}

// ---- keep rules (sparsifiers); dropped entries become +0.0 ---------------------------------

// The equal-rank of element i: prefix of its tile plus the equal entries before it in the tile.
__device__ __forceinline__ u64 equal_rank(const float* src, i64 i, u32 value_bits, const u64* prefix) {
    i64 tile = i / AMALGAM_RANK_TILE;
    u64 rank = prefix[tile];
    for (i64 j = tile * AMALGAM_RANK_TILE; j < i; j++) {
        rank += magnitude_bits(src[j]) == value_bits ? 1 : 0;
    }
    return rank;
}

__device__ __forceinline__ void keep_or_drop(const float* src, float* dst, i64 i, int keep, u64* kept) {
    dst[i] = keep ? src[i] : 0.0f;
    if (keep) {
        atomicAdd(&kept[amalgam_lane()], 1ULL);
    }
}

// KeepRule.TopK: |d| above the threshold, or equal to it with equal-rank < equals_to_keep.
extern "C" __global__ void amalgam_keep_top_k(const float* src, float* dst, int n, u32 threshold_bits,
                                              i64 equals_to_keep, const u64* prefix, u64* kept) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    u32 bits = magnitude_bits(src[i]);
    int keep = bits > threshold_bits;
    if (bits == threshold_bits) {
        keep = (i64) equal_rank(src, i, threshold_bits, prefix) < equals_to_keep;
    }
    keep_or_drop(src, dst, i, keep, kept);
}

// KeepRule.Band: above the low edge (equal entries past the first low_equals_dropped) and
// below the high edge (equal entries among the first high_equals_kept); an absent edge is open.
extern "C" __global__ void amalgam_keep_band(const float* src, float* dst, int n,
                                             int has_low, u32 low_bits, i64 low_equals_dropped, const u64* low_prefix,
                                             int has_high, u32 high_bits, i64 high_equals_kept, const u64* high_prefix,
                                             u64* kept) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    u32 bits = magnitude_bits(src[i]);
    int above_low = 1;
    if (has_low) {
        if (bits < low_bits) {
            above_low = 0;
        } else if (bits == low_bits) {
            above_low = (i64) equal_rank(src, i, low_bits, low_prefix) >= low_equals_dropped;
        }
    }
    int below_high = 1;
    if (has_high) {
        if (bits > high_bits) {
            below_high = 0;
        } else if (bits == high_bits) {
            below_high = (i64) equal_rank(src, i, high_bits, high_prefix) < high_equals_kept;
        }
    }
    keep_or_drop(src, dst, i, above_low && below_high, kept);
}

// CounterRandom (SplitMix64's finalizer over stream key and element index): 64-bit integers only.
__device__ __forceinline__ u64 counter_mix(u64 z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

__device__ __forceinline__ u64 counter_draw(u64 stream_key, i64 element) {
    return counter_mix(stream_key + ((u64) element + 1ULL) * 0x9E3779B97F4A7C15ULL) >> 40;
}

// KeepRule.Random (DARE): keep when the 24-bit draw is below keep_limit = ceil(density * 2^24).
extern "C" __global__ void amalgam_keep_random(const float* src, float* dst, int n, u64 stream_key,
                                               i64 chunk_start, u64 keep_limit, u64* kept) {
    i64 i = amalgam_index();
    if (i < n) {
        keep_or_drop(src, dst, i, counter_draw(stream_key, chunk_start + i) < keep_limit, kept);
    }
}

// KeepRule.DellaRows (MAGPRUNE): the ascending magnitude rank of the entry within its row
// (ties by lower column) sets its keep probability. O(cols) per entry: each thread ranks its
// own entry against its row.
extern "C" __global__ void amalgam_keep_della(const float* src, float* dst, int n, int cols, float low,
                                              float two_epsilon, u64 stream_key, i64 chunk_start, u64* kept) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    i64 row_start = (i / cols) * cols;
    i64 c = i - row_start;
    u32 mine = magnitude_bits(src[i]);
    int rank = 0;
    for (i64 k = 0; k < cols; k++) {
        u32 other = magnitude_bits(src[row_start + k]);
        rank += (other < mine || (other == mine && k < c)) ? 1 : 0;
    }
    float spread = cols == 1 ? 0.0f : __fdiv_rn((float) rank, (float) (cols - 1));
    float p = __fadd_rn(low, __fmul_rn(spread, two_epsilon));
    float u = __fmul_rn((float) counter_draw(stream_key, chunk_start + i), 5.9604644775390625e-8f);
    // u and p are non-negative: their bit patterns compare like the values.
    int keep = (int) __float_as_uint(u) < (int) __float_as_uint(p);
    keep_or_drop(src, dst, i, keep, kept);
}

// ---- merges ---------------------------------------------------------------------------------

// w * (d * s), the rescale skipped when it is 1 (TaskVectorKernel.weigh).
__device__ __forceinline__ float weigh(float d, float w, float s) {
    return __fmul_rn(w, s != 1.0f ? __fmul_rn(d, s) : d);
}

__device__ __forceinline__ float finish(float base, float mix, float div, int normalize, float lambda) {
    if (normalize) {
        mix = __fdiv_rn(mix, div);
    }
    if (lambda != 1.0f) {
        mix = __fmul_rn(mix, lambda);
    }
    return __fadd_rn(base, mix);
}

// The task-vector family's combine step over sparsified deltas (TaskVectorKernel.mergeAny):
// models[i] points at model i's delta; with consensus_sum, the TIES sign election by the sign
// of the sum (an exact zero never agrees, NaN sums elect negative), else the plain sum over
// plain_div. One thread per element, models in config order.
extern "C" __global__ void amalgam_merge_task_vector(const float* base, const u64* models, const float* weights,
                                                     const float* scales, int m, int n, int consensus_sum,
                                                     int normalize, float lambda, float plain_div, float* out,
                                                     u64* conflicts) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float sum = 0.0f;
    for (int k = 0; k < m; k++) {
        sum = __fadd_rn(sum, weigh(((const float*) models[k])[i], weights[k], scales[k]));
    }
    float mix;
    float div;
    if (consensus_sum) {
        u32 sum_magnitude = magnitude_bits(sum);
        int negative = sum_magnitude > 0x7f800000u || ((__float_as_uint(sum) >> 31) && sum_magnitude != 0);
        mix = 0.0f;
        div = 0.0f;
        int conflict = 0;
        for (int k = 0; k < m; k++) {
            float v = weigh(((const float*) models[k])[i], weights[k], scales[k]);
            u32 magnitude = magnitude_bits(v);
            int non_zero = magnitude != 0;
            int agrees = non_zero && magnitude <= 0x7f800000u && (int) (__float_as_uint(v) >> 31) == negative;
            if (agrees) {
                mix = __fadd_rn(mix, v);
                div = __fadd_rn(div, weights[k]);
            } else {
                // A disagreeing model adds +0.0, as the Java kernel's masks do.
                mix = __fadd_rn(mix, 0.0f);
                div = __fadd_rn(div, 0.0f);
            }
            conflict |= non_zero && !agrees;
        }
        if (conflict) {
            atomicAdd(&conflicts[amalgam_lane()], 1ULL);
        }
        if (magnitude_bits(div) == 0) {
            div = 1.0f;
        }
    } else {
        mix = sum;
        div = plain_div;
    }
    out[i] = finish(base[i], mix, div, normalize, lambda);
}

// linear: sum_i w_i * x_i in config order, divided by div when normalizing (LinearKernel).
extern "C" __global__ void amalgam_merge_linear(const u64* models, const float* weights, int m, int n,
                                                int normalize, float div, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float sum = 0.0f;
    for (int k = 0; k < m; k++) {
        sum = __fadd_rn(sum, __fmul_rn(weights[k], ((const float*) models[k])[i]));
    }
    out[i] = normalize ? __fdiv_rn(sum, div) : sum;
}

// ---- composable primitives (ComposedKernels.java) ------------------------------------------

// Bins of an exact dot product (ExactDot.java): one per power of two from 2^-298 up.
#define AMALGAM_DOT_BINS 555
#define AMALGAM_DOT_MIN_EXPONENT (-298)

__device__ __forceinline__ i64 signed_significand(u32 bits, u32 exponent) {
    i64 m = (i64) ((bits & 0x7fffffu) | (exponent == 0 ? 0u : 0x800000u));
    return (bits >> 31) ? -m : m;
}

// Exact sum of a[i] * b[i]: each product's 48-bit integer significand is split into 24-bit
// halves added into the signed bins of their powers of two (two's complement in u64, so integer
// atomics add signed values exactly), in AMALGAM_LANES copies; flags[0] NaN, flags[1] +inf,
// flags[2] -inf.
__device__ __forceinline__ void exact_product(u32 ba, u32 bb, float a, float b, u64* bins, u32* flags) {
    u32 ea = (ba >> 23) & 0xffu;
    u32 eb = (bb >> 23) & 0xffu;
    if (ea == 0xffu || eb == 0xffu) {
        float p = __fmul_rn(a, b);
        atomicOr(&flags[p != p ? 0 : (p > 0.0f ? 1 : 2)], 1u);
        return;
    }
    i64 p = signed_significand(ba, ea) * signed_significand(bb, eb);
    if (p == 0) {
        return;
    }
    int e = (int) (ea > 1u ? ea : 1u) + (int) (eb > 1u ? eb : 1u) - 300 - AMALGAM_DOT_MIN_EXPONENT;
    u64* lane = bins + (u64) amalgam_lane() * AMALGAM_DOT_BINS;
    atomicAdd(&lane[e], (u64) (p & 0xffffff));
    atomicAdd(&lane[e + 24], (u64) (p >> 24));
}

extern "C" __global__ void amalgam_exact_dot(const float* a, const float* b, int n, u64* bins, u32* flags) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    exact_product(__float_as_uint(a[i]), __float_as_uint(b[i]), a[i], b[i], bins, flags);
}

// Exact signed sum of a[i]: the exact dot product with 1.0 (ExactDot.add(a, 1.0f)), same bins.
extern "C" __global__ void amalgam_exact_signed_sum(const float* a, int n, u64* bins, u32* flags) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    exact_product(__float_as_uint(a[i]), 0x3f800000u, a[i], 1.0f, bins, flags);
}

// How many a[i] are not zero, in AMALGAM_LANES counters.
extern "C" __global__ void amalgam_count_nonzero(const float* a, int n, u64* lanes) {
    i64 i = amalgam_index();
    if (i < n && a[i] != 0.0f) {
        atomicAdd(&lanes[amalgam_lane()], 1ULL);
    }
}

// One thread per row of `cols`: sum a*b in double in column order (each product of two floats
// is exact in double), rounded once to float.
extern "C" __global__ void amalgam_row_dots(const float* a, const float* b, int rows, int cols, float* out) {
    i64 r = amalgam_index();
    if (r >= rows) {
        return;
    }
    double s = 0.0;
    for (i64 j = r * cols; j < (r + 1) * cols; j++) {
        s = __dadd_rn(s, __dmul_rn((double) a[j], (double) b[j]));
    }
    out[r] = (float) s;
}

// out = [base +] (c_0 t_0 + c_1 t_1 + ...) left to right; a term is an input, or its delta
// against the base where deltas[k] is set. cols == 0: coefficients[k] for term k; else term k's
// coefficient for each row of `cols` is row_coefficients[k][row], or with per_column for each
// column of rows `cols` wide, row_coefficients[k][column].
extern "C" __global__ void amalgam_combine(const u64* terms, const int* deltas, const float* coefficients,
                                           const u64* row_coefficients, int m, const float* base, int plus_base,
                                           int cols, int per_column, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float sum = 0.0f;
    for (int k = 0; k < m; k++) {
        float v = ((const float*) terms[k])[i];
        if (deltas[k]) {
            v = __fsub_rn(v, base[i]);
        }
        float c = cols == 0 ? coefficients[k]
                  : ((const float*) row_coefficients[k])[per_column ? i % cols : i / cols];
        float term = __fmul_rn(c, v);
        sum = k == 0 ? term : __fadd_rn(sum, term);
    }
    out[i] = plus_base ? __fadd_rn(base[i], sum) : sum;
}

// One thread per column of rows `columns` wide: sum a*b down the column in double, in row
// order, rounded once to float32.
extern "C" __global__ void amalgam_column_dots(const float* a, const float* b, int rows, int columns, float* out) {
    i64 c = amalgam_index();
    if (c >= columns) {
        return;
    }
    double s = 0.0;
    for (i64 r = 0; r < rows; r++) {
        i64 j = r * columns + c;
        s = __dadd_rn(s, __dmul_rn((double) a[j], (double) b[j]));
    }
    out[c] = (float) s;
}

// nearswap: w = clamp(t / max(|b - x|, 1e-6), 0, 1), out = w x + (1 - w) b.
// LoRA on read: v = round_to(dtype, v + scale * d), d = sum_k b[(p - b_first) * rank + k] * a[k * a_cols + q]
// in float32 from 0 in ascending k, (p, q) = (row, col) of the element in W as stored, swapped when
// transposed (fan_in_fan_out); the value as the adapted weight would be stored (LowRankKernel).
extern "C" __global__ void amalgam_low_rank(float* values, const float* a, const float* b, i64 chunk_start,
                                            int cols, i64 b_first, float scale, int rank, int a_cols,
                                            int transposed, int dtype, int n) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    i64 g = chunk_start + i;
    i64 row = g / cols;
    i64 col = g % cols;
    i64 p = transposed ? col : row;
    i64 q = transposed ? row : col;
    const float* b_row = b + (p - b_first) * rank;
    float d = 0.0f;
    for (int k = 0; k < rank; k++) {
        d = __fadd_rn(d, __fmul_rn(b_row[k], a[(i64) k * a_cols + q]));
    }
    float v = __fadd_rn(values[i], __fmul_rn(scale, d));
    if (dtype == AMALGAM_DTYPE_BF16) {
        v = __uint_as_float(((u32) float_to_bfloat16(v)) << 16);
    } else if (dtype == AMALGAM_DTYPE_F16) {
        v = half_to_float((u32) float_to_half(v));
    }
    values[i] = v;
}

// passthrough: out = x (scaled == 0: the very bits, signed zeros and NaN payloads kept) or x * factor.
extern "C" __global__ void amalgam_scale(const float* x, float factor, int scaled, int n, float* out) {
    i64 i = amalgam_index();
    if (i < n) {
        out[i] = scaled ? __fmul_rn(x[i], factor) : x[i];
    }
}

extern "C" __global__ void amalgam_nearswap(const float* x, const float* base, float t, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float xv = x[i];
    float bv = base[i];
    float distance = __uint_as_float(magnitude_bits(__fsub_rn(bv, xv)));
    float w = __fdiv_rn(t, distance > 1e-6f ? distance : 1e-6f);
    w = w > 1.0f ? 1.0f : (w < 0.0f ? 0.0f : w);
    out[i] = __fadd_rn(__fmul_rn(w, xv), __fmul_rn(__fsub_rn(1.0f, w), bv));
}

__device__ __forceinline__ int contributes(float d, float epsilon) {
    return __uint_as_float(magnitude_bits(d)) > epsilon;
}

// How many models contribute at element i (RAM's c).
__device__ __forceinline__ int contributing_models(const u64* models, int m, float b, float epsilon, i64 i) {
    int c = 0;
    for (int k = 0; k < m; k++) {
        c += contributes(__fsub_rn(((const float*) models[k])[i], b), epsilon);
    }
    return c;
}

// RAM (plus == 0): b + (sum of contributing d_i) / max(c, 1); RAM+ (plus != 0):
// b + sum of (c == 1 ? unique_scales[i] d_i : d_i / c) over contributing entries.
extern "C" __global__ void amalgam_ram(const u64* models, int m, const float* base, float epsilon,
                                       const float* unique_scales, int plus, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    int c = contributing_models(models, m, b, epsilon, i);
    float sum = 0.0f;
    for (int k = 0; k < m; k++) {
        float d = __fsub_rn(((const float*) models[k])[i], b);
        if (!contributes(d, epsilon)) {
            continue;
        }
        float term = !plus ? d : (c == 1 ? __fmul_rn(unique_scales[k], d) : __fdiv_rn(d, (float) c));
        sum = __fadd_rn(sum, term);
    }
    out[i] = plus ? __fadd_rn(b, sum) : __fadd_rn(b, __fdiv_rn(sum, (float) (c > 1 ? c : 1)));
}

// Per model, its contributing entries where several models contribute (counters[2k]) and
// where only it does (counters[2k + 1]), each in AMALGAM_LANES lanes.
extern "C" __global__ void amalgam_ram_counts(const u64* models, int m, const float* base, float epsilon, int n,
                                              u64* counters) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    int c = contributing_models(models, m, b, epsilon, i);
    for (int k = 0; k < m; k++) {
        if (contributes(__fsub_rn(((const float*) models[k])[i], b), epsilon)) {
            atomicAdd(&counters[((u64) (2 * k + (c > 1 ? 0 : 1))) * AMALGAM_LANES + amalgam_lane()], 1ULL);
        }
    }
}

// ---- SCE -------------------------------------------------------------------------------------

// Per element, the population variance of the models' deltas: mean first, then the squares.
extern "C" __global__ void amalgam_variance(const u64* models, int m, const float* base, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    float count = (float) m;
    float sum = 0.0f;
    for (int k = 0; k < m; k++) {
        sum = __fadd_rn(sum, __fsub_rn(((const float*) models[k])[i], b));
    }
    float mean = __fdiv_rn(sum, count);
    float squares = 0.0f;
    for (int k = 0; k < m; k++) {
        float e = __fsub_rn(__fsub_rn(((const float*) models[k])[i], b), mean);
        squares = __fadd_rn(squares, __fmul_rn(e, e));
    }
    out[i] = __fdiv_rn(squares, count);
}

// A model's delta where the selection keeps the position, else 0.
extern "C" __global__ void amalgam_selected_delta(const float* x, const float* base, const float* selection, int n,
                                                  float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    out[i] = selection[i] != 0.0f ? __fsub_rn(x[i], base[i]) : 0.0f;
}

// SCE's weighted sign consensus. The selection may be the output buffer: each thread reads its
// own position before writing it.
extern "C" __global__ void amalgam_sce(const u64* models, const float* weights, int m, const float* base,
                                       const float* selection, int selected, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    int keep_position = !selected || selection[i] != 0.0f;
    float sum = 0.0f;
    for (int k = 0; k < m; k++) {
        float tau = keep_position ? __fsub_rn(((const float*) models[k])[i], b) : 0.0f;
        sum = __fadd_rn(sum, tau);
    }
    int positive = sum >= 0.0f;
    float mixed = 0.0f;
    float divisor = 0.0f;
    for (int k = 0; k < m; k++) {
        float tau = keep_position ? __fsub_rn(((const float*) models[k])[i], b) : 0.0f;
        int keep = positive ? tau > 0.0f : tau < 0.0f;
        float w = keep ? weights[k] : 0.0f;
        mixed = __fadd_rn(mixed, __fmul_rn(tau, w));
        divisor = __fadd_rn(divisor, w);
    }
    out[i] = __fadd_rn(b, __fdiv_rn(mixed, divisor > 1e-6f ? divisor : 1e-6f));
}

// ---- arcee_fusion ----------------------------------------------------------------------------

// exp and log from exact steps, in the order of dev.amalgam.kernels.PortableMath, so that the
// KL divergence has the same bits on both backends (CUDA's exp and log are not correctly rounded).
__device__ __forceinline__ double amalgam_exp(double x) {
    if (x != x) {
        return x;
    }
    if (x > 709.0) {
        return (double) INFINITY;
    }
    if (x < -745.0) {
        return 0.0;
    }
    const double coefficients[12] = {0x1.6124613a86d09p-33, 0x1.1eed8eff8d898p-29, 0x1.ae64567f544e4p-26,
        0x1.27e4fb7789f5cp-22, 0x1.71de3a556c734p-19, 0x1.a01a01a01a01ap-16, 0x1.a01a01a01a01ap-13,
        0x1.6c16c16c16c17p-10, 0x1.1111111111111p-7, 0x1.5555555555555p-5, 0x1.5555555555555p-3, 0x1.0p-1};
    double k = rint(__dmul_rn(x, 0x1.71547652b82fep+0));
    double r = __dsub_rn(__dsub_rn(x, __dmul_rn(k, 0x1.62e42fee00000p-1)), __dmul_rn(k, 0x1.a39ef35793c76p-33));
    double p = coefficients[0];
    for (int i = 1; i < 12; i++) {
        p = __dadd_rn(__dmul_rn(p, r), coefficients[i]);
    }
    p = __dadd_rn(__dmul_rn(p, r), 1.0);
    p = __dadd_rn(__dmul_rn(p, r), 1.0);
    return scalbn(p, (int) k);
}

__device__ __forceinline__ double amalgam_log(double x) {
    if (x != x || x < 0.0) {
        return (double) NAN;
    }
    if (x == 0.0) {
        return -(double) INFINITY;
    }
    if (x == (double) INFINITY) {
        return x;
    }
    const double coefficients[11] = {0x1.642c8590b2164p-5, 0x1.8618618618618p-5, 0x1.af286bca1af28p-5,
        0x1.e1e1e1e1e1e1ep-5, 0x1.1111111111111p-4, 0x1.3b13b13b13b14p-4, 0x1.745d1745d1746p-4,
        0x1.c71c71c71c71cp-4, 0x1.2492492492492p-3, 0x1.999999999999ap-3, 0x1.5555555555555p-2};
    int e = ilogb(x);
    double m = scalbn(x, -e);
    if (m > 0x1.6a09e667f3bcdp+0) {
        m = __dmul_rn(m, 0.5);
        e = e + 1;
    }
    double f = __ddiv_rn(__dsub_rn(m, 1.0), __dadd_rn(m, 1.0));
    double s = __dmul_rn(f, f);
    double p = coefficients[0];
    for (int i = 1; i < 11; i++) {
        p = __dadd_rn(__dmul_rn(p, s), coefficients[i]);
    }
    p = __dadd_rn(__dmul_rn(p, s), 1.0);
    double de = (double) e;
    return __dadd_rn(__dmul_rn(de, 0x1.62e42fee00000p-1),
                     __dadd_rn(__dmul_rn(de, 0x1.a39ef35793c76p-33), __dmul_rn(__dadd_rn(f, f), p)));
}

// One thread per row: the KL divergence of softmax(x) from softmax(b) over the row, in double
// in index order, rounded to float32; then |x - b| times it for every entry of the row.
extern "C" __global__ void amalgam_importance(const float* x, const float* base, int rows, int cols, float* out) {
    i64 r = amalgam_index();
    if (r >= rows) {
        return;
    }
    i64 from = r * (i64) cols;
    double mx = -(double) INFINITY;
    double mb = -(double) INFINITY;
    for (i64 j = from; j < from + cols; j++) {
        double xv = (double) x[j];
        double bv = (double) base[j];
        mx = xv > mx ? xv : mx;
        mb = bv > mb ? bv : mb;
    }
    double sx = 0.0;
    double sb = 0.0;
    for (i64 j = from; j < from + cols; j++) {
        sx = __dadd_rn(sx, amalgam_exp(__dsub_rn((double) x[j], mx)));
        sb = __dadd_rn(sb, amalgam_exp(__dsub_rn((double) base[j], mb)));
    }
    double kl = 0.0;
    for (i64 j = from; j < from + cols; j++) {
        double p = __dadd_rn(__ddiv_rn(amalgam_exp(__dsub_rn((double) x[j], mx)), sx), 1e-8);
        double q = __dadd_rn(__ddiv_rn(amalgam_exp(__dsub_rn((double) base[j], mb)), sb), 1e-8);
        kl = __dadd_rn(kl, __dmul_rn(p, amalgam_log(__ddiv_rn(p, q))));
    }
    float klf = (float) (kl > 0.0 ? kl : 0.0);
    for (i64 j = from; j < from + cols; j++) {
        out[j] = __fmul_rn(__uint_as_float(magnitude_bits(__fsub_rn(x[j], base[j]))), klf);
    }
}

// b + (x - b) where the importance reaches the threshold, else b.
extern "C" __global__ void amalgam_fuse(const float* x, const float* base, const float* importance, float threshold,
                                        int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    out[i] = importance[i] >= threshold ? __fadd_rn(b, __fsub_rn(x[i], b)) : b;
}

// Paper TIES over trimmed deltas (ComposedKernels.tiesModel, electedMean): v_k = t_k * w_k; the
// total's sign in config order (tie_sign where it is 0 or NaN), the agreeing non-zero values' sum
// from +0 over their count (at least 1); out = base + lambda * mix. One thread per element.
extern "C" __global__ void amalgam_merge_ties_model(const float* base, const u64* models, const float* weights,
                                                    int m, int n, int tie_sign, float lambda, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float total = __fmul_rn(((const float*) models[0])[i], weights[0]);
    for (int k = 1; k < m; k++) {
        total = __fadd_rn(total, __fmul_rn(((const float*) models[k])[i], weights[k]));
    }
    int sign = total > 0.0f ? 1 : (total < 0.0f ? -1 : tie_sign);
    float mix = 0.0f;
    int agreeing = 0;
    for (int k = 0; k < m; k++) {
        float v = __fmul_rn(((const float*) models[k])[i], weights[k]);
        if (sign != 0 && (sign > 0 ? v > 0.0f : v < 0.0f)) {
            mix = __fadd_rn(mix, v);
            agreeing++;
        }
    }
    out[i] = __fadd_rn(base[i], __fmul_rn(lambda, __fdiv_rn(mix, (float) (agreeing > 1 ? agreeing : 1))));
}

// sum = weight * kept (first model), else sum + weight * kept: TIES' total, one model at a time
// in config order (ComposedKernels.addWeighted).
extern "C" __global__ void amalgam_add_weighted(const float* kept, float weight, int first, int n, float* sum) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float v = __fmul_rn(weight, kept[i]);
    sum[i] = first ? v : __fadd_rn(sum[i], v);
}

// Positive entries counted in lanes [0, LANES), negative ones in [LANES, 2 LANES): the chunk's
// sum of sign(x) (ComposedKernels.signSum; NaN and zeros count nothing).
extern "C" __global__ void amalgam_sign_counts(const float* x, int n, u64* lanes) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float v = x[i];
    if (v > 0.0f) {
        atomicAdd(&lanes[amalgam_lane()], 1ULL);
    } else if (v < 0.0f) {
        atomicAdd(&lanes[AMALGAM_LANES + amalgam_lane()], 1ULL);
    }
}

// Java's Math.max for floats: NaN wins, +0 above -0.
__device__ __forceinline__ float java_maxf(float a, float b) {
    if (a != a) {
        return a;
    }
    if (a == 0.0f && b == 0.0f && (__float_as_uint(a) >> 31)) {
        return b;
    }
    return a >= b ? a : b;
}

// VaRM's variation of one delta (ComposedKernels.variation): 0 square, 1 abs, 2 signed.
__device__ __forceinline__ float varm_f(float x, float b, int variation) {
    float d = __fsub_rn(x, b);
    return variation == 0 ? __fmul_rn(d, d) : (variation == 1 ? fabsf(d) : d);
}

// VaRM at element granularity (ComposedKernels.varmElement): weights f_k / max(sum f, 1e-13) or
// a softmax of f_k / temperature with amalgam_exp; out = sum_k w_k x_k from +0, models in config
// order, float32. Each f_k is recomputed where needed rather than held (no per-model array).
extern "C" __global__ void amalgam_varm_element(const float* base, const u64* models, int m, int variation,
                                                int softmax, float temperature, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    float sum = 0.0f;
    if (softmax) {
        float mx = __fdiv_rn(varm_f(((const float*) models[0])[i], b, variation), temperature);
        for (int k = 1; k < m; k++) {
            mx = java_maxf(mx, __fdiv_rn(varm_f(((const float*) models[k])[i], b, variation), temperature));
        }
        float total = 0.0f;
        for (int k = 0; k < m; k++) {
            float z = __fdiv_rn(varm_f(((const float*) models[k])[i], b, variation), temperature);
            total = __fadd_rn(total, (float) amalgam_exp((double) __fsub_rn(z, mx)));
        }
        for (int k = 0; k < m; k++) {
            float x = ((const float*) models[k])[i];
            float z = __fdiv_rn(varm_f(x, b, variation), temperature);
            float w = __fdiv_rn((float) amalgam_exp((double) __fsub_rn(z, mx)), total);
            sum = __fadd_rn(sum, __fmul_rn(w, x));
        }
    } else {
        float total = 0.0f;
        for (int k = 0; k < m; k++) {
            total = __fadd_rn(total, varm_f(((const float*) models[k])[i], b, variation));
        }
        float div = java_maxf(total, 1e-13f);
        for (int k = 0; k < m; k++) {
            float x = ((const float*) models[k])[i];
            sum = __fadd_rn(sum, __fmul_rn(__fdiv_rn(varm_f(x, b, variation), div), x));
        }
    }
    out[i] = sum;
}

// ---- consensus merging (TALL masks) -----------------------------------------------------------

// bits[i] |= 1 << bit where the kept delta is not zero (bit 0 starts the word): which entries a
// model's keep rule kept, one bit per model, in a 32-bit word per element.
extern "C" __global__ void amalgam_kept_bits(const float* kept, int bit, int first, int n, u32* bits) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    u32 word = first ? 0u : bits[i];
    bits[i] = word | (kept[i] != 0.0f ? (1u << bit) : 0u);
}

// v_k of consensus merging (ComposedKernels.consensus): w_k d_k where kept and d_k != 0, else +0.
__device__ __forceinline__ float consensus_v(const u64* models, const float* weights, int k, i64 i, float b,
                                            u32 ruled, u32 bits) {
    float d = __fsub_rn(((const float*) models[k])[i], b);
    int keep = ((ruled >> k) & 1u) ? (int) ((bits >> k) & 1u) : 1;
    return keep && d != 0.0f ? __fmul_rn(weights[k], d) : 0.0f;
}

// Consensus merging (ComposedKernels.consensus): the multi-task vector (the v_k's sum, or with
// ties paper TIES' elected mean), each task's TALL mask |x_k - b| > |(b + tv) - x_k| * lambda_k,
// out = b + alpha * (tv where at least min_tasks masks hold, else +0). `ruled` marks the models
// whose kept bits are in `io` (as u32 words); the output overwrites them element by element.
extern "C" __global__ void amalgam_consensus(const float* base, const u64* models, const float* weights,
                                             const float* lambdas, int m, int ties, int tie_sign, int min_tasks,
                                             float alpha, u32 ruled, int n, u32* io) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    u32 bits = ruled ? io[i] : 0u;
    float tv = consensus_v(models, weights, 0, i, b, ruled, bits);
    for (int k = 1; k < m; k++) {
        tv = __fadd_rn(tv, consensus_v(models, weights, k, i, b, ruled, bits));
    }
    if (ties) {
        int sign = tv > 0.0f ? 1 : (tv < 0.0f ? -1 : tie_sign);
        float mix = 0.0f;
        int agreeing = 0;
        for (int k = 0; k < m; k++) {
            float v = consensus_v(models, weights, k, i, b, ruled, bits);
            if (sign != 0 && (sign > 0 ? v > 0.0f : v < 0.0f)) {
                mix = __fadd_rn(mix, v);
                agreeing++;
            }
        }
        tv = __fdiv_rn(mix, (float) (agreeing > 1 ? agreeing : 1));
    }
    float multi = __fadd_rn(b, tv);
    int tasks = 0;
    for (int k = 0; k < m; k++) {
        float x = ((const float*) models[k])[i];
        if (fabsf(__fsub_rn(x, b)) > __fmul_rn(fabsf(__fsub_rn(multi, x)), lambdas[k])) {
            tasks++;
        }
    }
    io[i] = __float_as_uint(__fadd_rn(b, __fmul_rn(alpha, tasks >= min_tasks ? tv : 0.0f)));
}

// ---- WIDEN's element path and PCB-merging ----------------------------------------------------

// Java's Math.min for floats: NaN wins, -0 below +0.
__device__ __forceinline__ float java_minf(float a, float b) {
    if (a != a) {
        return a;
    }
    if (a == 0.0f && b == 0.0f && (__float_as_uint(b) >> 31)) {
        return b;
    }
    return a <= b ? a : b;
}

// WIDEN per element (ComposedKernels.widenElements): scores of |d_k| across the models (a softmax
// with amalgam_exp, or `calibration` above the model's threshold), out = b + (d_0 s_0 + d_1 s_1 ...).
extern "C" __global__ void amalgam_widen_elements(const float* base, const u64* models, int m,
                                                  const float* thresholds, float calibration, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    float mx = fabsf(__fsub_rn(((const float*) models[0])[i], b));
    for (int k = 1; k < m; k++) {
        mx = java_maxf(mx, fabsf(__fsub_rn(((const float*) models[k])[i], b)));
    }
    float total = 0.0f;
    for (int k = 0; k < m; k++) {
        float diff = fabsf(__fsub_rn(((const float*) models[k])[i], b));
        total = __fadd_rn(total, (float) amalgam_exp((double) __fsub_rn(diff, mx)));
    }
    float sum = 0.0f;
    for (int k = 0; k < m; k++) {
        float d = __fsub_rn(((const float*) models[k])[i], b);
        float diff = fabsf(d);
        float score = diff > thresholds[k] ? calibration
                : __fdiv_rn((float) amalgam_exp((double) __fsub_rn(diff, mx)), total);
        float term = __fmul_rn(d, score);
        sum = k == 0 ? term : __fadd_rn(sum, term);
    }
    out[i] = __fadd_rn(b, sum);
}

// PortableMath.tanh: x below 2^-12 in magnitude, sign(x) above 20, else (e - 1)/(e + 1) with
// e = exp(2x) in double, rounded to float32.
__device__ __forceinline__ float amalgam_tanhf(float x) {
    float size = fabsf(x);
    if (!(size >= 2.44140625e-4f)) {
        return x;
    }
    if (size > 20.0f) {
        return x < 0.0f ? -1.0f : 1.0f;
    }
    double e = amalgam_exp(__dmul_rn(2.0, (double) x));
    return (float) __ddiv_rn(__dsub_rn(e, 1.0), __dadd_rn(e, 1.0));
}

// The sum of the deltas at element i from the first, config order (ComposedKernels.deltasAt).
__device__ __forceinline__ float pcb_delta_sum(const u64* models, int m, i64 i, float b) {
    float sum = 0.0f;
    for (int k = 0; k < m; k++) {
        float d = __fsub_rn(((const float*) models[k])[i], b);
        sum = k == 0 ? d : __fadd_rn(sum, d);
    }
    return sum;
}

// |d| clamped to [lo, hi] (ComposedKernels.balanceOf's a).
__device__ __forceinline__ float pcb_clamped(float d, float lo, float hi) {
    return java_minf(java_maxf(fabsf(d), lo), hi);
}

// PCB's balance of one delta (ComposedKernels.balanceOf): exp(M s^2) tanh(d S).
__device__ __forceinline__ float pcb_balance_of(float d, float sum, int m, float lo, float hi) {
    float a = pcb_clamped(d, lo, hi);
    float s = hi > lo ? __fdiv_rn(__fsub_rn(a, lo), __fsub_rn(hi, lo)) : 0.0f;
    float self = (float) amalgam_exp((double) __fmul_rn((float) m, __fmul_rn(s, s)));
    return __fmul_rn(self, amalgam_tanhf(__fmul_rn(d, sum)));
}

// The balance of model `model` as its positive part (positive != 0) or negative part
// (ComposedKernels.balance).
extern "C" __global__ void amalgam_pcb_balance(const float* base, const u64* models, int m, int model, float lo,
                                               float hi, int positive, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    float sum = pcb_delta_sum(models, m, i, b);
    float pcb = pcb_balance_of(__fsub_rn(((const float*) models[model])[i], b), sum, m, lo, hi);
    out[i] = positive ? (pcb > 0.0f ? pcb : 0.0f) : (pcb < 0.0f ? -pcb : 0.0f);
}

// PCB-merging (ComposedKernels.pcb): bounds holds lo[m], hi[m], low[m], high[m].
extern "C" __global__ void amalgam_pcb(const float* base, const u64* models, int m, const float* bounds,
                                       float lambda, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float b = base[i];
    float sum = pcb_delta_sum(models, m, i, b);
    float num = 0.0f;
    float den = 0.0f;
    for (int k = 0; k < m; k++) {
        float lo = bounds[k];
        float hi = bounds[m + k];
        float low = bounds[2 * m + k];
        float high = bounds[3 * m + k];
        float d = __fsub_rn(((const float*) models[k])[i], b);
        float c = 0.0f;
        if (high > low) {
            c = __fdiv_rn(__fsub_rn(java_maxf(pcb_balance_of(d, sum, m, lo, hi), low), low), __fsub_rn(high, low));
        }
        float a = pcb_clamped(d, lo, hi);
        float t = d > 0.0f ? a : (d < 0.0f ? -a : 0.0f);
        float term = __fmul_rn(c, t);
        num = k == 0 ? term : __fadd_rn(num, term);
        den = k == 0 ? c : __fadd_rn(den, c);
    }
    out[i] = __fadd_rn(b, __fmul_rn(lambda, __fdiv_rn(num, java_maxf(den, 1e-12f))));
}

// ---- companion inputs: Fisher merging, OTA, Fast Fisher Grafting ------------------------------

// Fisher-weighted averaging (ComposedKernels.fisher): t_k = c_k F_k (F floored at `floor` for
// model 0, or every model without favor_target), out = (sum t_k x_k) / (sum t_k), sums from +0.
extern "C" __global__ void amalgam_fisher(const u64* models, const u64* fishers, const float* coefficients, int m,
                                          float floor, int favor_target, int n, float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float lhs = 0.0f;
    float rhs = 0.0f;
    for (int k = 0; k < m; k++) {
        float diag = ((const float*) fishers[k])[i];
        if (!favor_target || k == 0) {
            diag = java_maxf(diag, floor);
        }
        float t = __fmul_rn(coefficients[k], diag);
        lhs = __fadd_rn(lhs, t);
        rhs = __fadd_rn(rhs, __fmul_rn(t, ((const float*) models[k])[i]));
    }
    out[i] = __fdiv_rn(rhs, lhs);
}

// OTA (ComposedKernels.ota): p_k = float(sqrt(double(v_k + eps))) + eps, out = (sum p_k x_k) / (sum p_k).
extern "C" __global__ void amalgam_ota(const u64* models, const u64* moments, int m, float epsilon, int n,
                                       float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float weights = 0.0f;
    float sum = 0.0f;
    for (int k = 0; k < m; k++) {
        float v = ((const float*) moments[k])[i];
        float p = __fadd_rn((float) __dsqrt_rn((double) __fadd_rn(v, epsilon)), epsilon);
        weights = __fadd_rn(weights, p);
        sum = __fadd_rn(sum, __fmul_rn(p, ((const float*) models[k])[i]));
    }
    out[i] = __fdiv_rn(sum, weights);
}

// Fast Fisher Grafting's salience (ComposedKernels.salience): (d * d) * v.
extern "C" __global__ void amalgam_salience(const float* x, const float* base, const float* moment, int n,
                                            float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    float d = __fsub_rn(x[i], base[i]);
    out[i] = __fmul_rn(__fmul_rn(d, d), moment[i]);
}

// The graft (ComposedKernels.graft): b + (x - b) where the top-k rule keeps the position's score
// (equal scores by rank, zero scores too), else b; kept positions counted in `kept` lanes.
extern "C" __global__ void amalgam_graft(const float* x, const float* base, const float* scores, int n,
                                         u32 threshold_bits, i64 equals_to_keep, const u64* prefix, u64* kept,
                                         float* out) {
    i64 i = amalgam_index();
    if (i >= n) {
        return;
    }
    u32 bits = magnitude_bits(scores[i]);
    int keep = bits > threshold_bits;
    if (bits == threshold_bits) {
        keep = (i64) equal_rank(scores, i, threshold_bits, prefix) < equals_to_keep;
    }
    float b = base[i];
    out[i] = keep ? __fadd_rn(b, __fsub_rn(x[i], b)) : b;
    if (keep) {
        atomicAdd(&kept[amalgam_lane()], 1ULL);
    }
}
