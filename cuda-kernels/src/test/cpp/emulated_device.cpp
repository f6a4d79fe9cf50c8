// The JNI side of dev.amalgam.kernels.gpu.EmulatedDevice: "device memory" is host memory, and a
// launch runs the kernel body of amalgam_kernels.cu once per (block, thread), in order. The
// kernel's C parameter types are read off its declaration and checked against the signature
// the Java host code launched it with, so a drifting parameter list fails the tests.
#include <jni.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "amalgam_kernels.cu"

thread_local amalgam_dim3 threadIdx;
thread_local amalgam_dim3 blockIdx;
thread_local amalgam_dim3 blockDim;
thread_local amalgam_dim3 gridDim;

namespace {

template <typename T> struct Param;
template <> struct Param<int> {
    static constexpr char code = 'i';
    static int from(jlong v) { return (int) v; }
};
template <> struct Param<unsigned int> {
    static constexpr char code = 'u';
    static unsigned int from(jlong v) { return (unsigned int) v; }
};
template <> struct Param<float> {
    static constexpr char code = 'f';
    static float from(jlong v) { return __uint_as_float((unsigned int) v); }
};
template <> struct Param<long long> {
    static constexpr char code = 'l';
    static long long from(jlong v) { return (long long) v; }
};
template <> struct Param<unsigned long long> {
    static constexpr char code = 'L';
    static unsigned long long from(jlong v) { return (unsigned long long) v; }
};
template <typename T> struct Param<T*> {
    static constexpr char code = 'p';
    static T* from(jlong v) { return (T*) (intptr_t) v; }
};

template <typename... A> std::string signature_of(void (*)(A...)) {
    return std::string{Param<A>::code...};
}

template <typename... A, size_t... I>
void call(void (*kernel)(A...), const jlong* args, std::index_sequence<I...>) {
    kernel(Param<A>::from(args[I])...);
}

// The order in which a launch runs its threads: 0 in index order, 1 in reverse, 2 in a
// pseudo-random permutation. A GPU promises no order, so a kernel whose result changes with the
// order (a thread reading what another wrote) fails the tests run in the other orders.
template <typename... A>
void run(void (*kernel)(A...), unsigned blocks, unsigned block, const jlong* args, int order) {
    gridDim = {blocks, 1, 1};
    blockDim = {block, 1, 1};
    unsigned long long total = (unsigned long long) blocks * block;
    std::vector<unsigned long long> ids(total);
    for (unsigned long long i = 0; i < total; i++) {
        ids[i] = order == 1 ? total - 1 - i : i;
    }
    if (order == 2) {
        std::mt19937_64 random(total * 0x9E3779B97F4A7C15ULL);
        std::shuffle(ids.begin(), ids.end(), random);
    }
    for (unsigned long long id : ids) {
        blockIdx = {(unsigned) (id / block), 0, 0};
        threadIdx = {(unsigned) (id % block), 0, 0};
        call(kernel, args, std::index_sequence_for<A...>{});
    }
}

struct Entry {
    const char* name;
    std::string (*signature)();
    void (*launch)(unsigned, unsigned, const jlong*, int);
};

#define KERNEL(k) \
    Entry { #k, []() { return signature_of(&k); }, \
            [](unsigned g, unsigned b, const jlong* a, int o) { run(&k, g, b, a, o); } }

const Entry KERNELS[] = {
    KERNEL(amalgam_decode), KERNEL(amalgam_encode), KERNEL(amalgam_delta), KERNEL(amalgam_square_tiles), KERNEL(amalgam_delta_dot_tiles),
    KERNEL(amalgam_histogram_high), KERNEL(amalgam_histogram_low), KERNEL(amalgam_count_equal_tiles),
    KERNEL(amalgam_exclusive_prefix), KERNEL(amalgam_exact_sum), KERNEL(amalgam_keep_top_k), KERNEL(amalgam_keep_band),
    KERNEL(amalgam_keep_random), KERNEL(amalgam_keep_della), KERNEL(amalgam_merge_task_vector),
    KERNEL(amalgam_merge_linear), KERNEL(amalgam_exact_dot), KERNEL(amalgam_count_nonzero), KERNEL(amalgam_row_dots),
    KERNEL(amalgam_combine), KERNEL(amalgam_nearswap), KERNEL(amalgam_scale), KERNEL(amalgam_low_rank), KERNEL(amalgam_ram), KERNEL(amalgam_ram_counts), KERNEL(amalgam_variance), KERNEL(amalgam_selected_delta),
    KERNEL(amalgam_sce), KERNEL(amalgam_importance), KERNEL(amalgam_fuse), KERNEL(amalgam_column_dots),
    KERNEL(amalgam_dequant_fp8), KERNEL(amalgam_dequant_mxfp4), KERNEL(amalgam_merge_ties_model),
    KERNEL(amalgam_add_weighted), KERNEL(amalgam_sign_counts), KERNEL(amalgam_exact_signed_sum), KERNEL(amalgam_varm_element), KERNEL(amalgam_kept_bits),
    KERNEL(amalgam_consensus), KERNEL(amalgam_widen_elements), KERNEL(amalgam_pcb_balance), KERNEL(amalgam_pcb),
    KERNEL(amalgam_fisher), KERNEL(amalgam_ota), KERNEL(amalgam_salience), KERNEL(amalgam_graft),
};

void throw_java(JNIEnv* env, const std::string& message) {
    jclass c = env->FindClass("java/lang/IllegalArgumentException");
    env->ThrowNew(c, message.c_str());
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_dev_amalgam_kernels_gpu_EmulatedDevice_allocate0(JNIEnv*, jclass, jlong bytes) {
    void* p = std::malloc((size_t) bytes);
    if (p != nullptr) {
        // Device memory starts with garbage, not zeros: a kernel or host step that forgets to
        // clear a counter must fail here too.
        std::memset(p, 0xa5, (size_t) bytes);
    }
    return (jlong) (intptr_t) p;
}

JNIEXPORT void JNICALL Java_dev_amalgam_kernels_gpu_EmulatedDevice_free0(JNIEnv*, jclass, jlong address) {
    std::free((void*) (intptr_t) address);
}

JNIEXPORT void JNICALL Java_dev_amalgam_kernels_gpu_EmulatedDevice_copy0(JNIEnv*, jclass, jlong dst, jlong src,
                                                                         jlong bytes) {
    std::memmove((void*) (intptr_t) dst, (const void*) (intptr_t) src, (size_t) bytes);
}

JNIEXPORT void JNICALL Java_dev_amalgam_kernels_gpu_EmulatedDevice_zero0(JNIEnv*, jclass, jlong dst, jlong bytes) {
    std::memset((void*) (intptr_t) dst, 0, (size_t) bytes);
}

JNIEXPORT void JNICALL Java_dev_amalgam_kernels_gpu_EmulatedDevice_launch0(JNIEnv* env, jclass, jstring symbol,
                                                                           jstring signature, jint blocks,
                                                                           jint block, jlongArray args,
                                                                           jint order) {
    const char* name = env->GetStringUTFChars(symbol, nullptr);
    const char* sig = env->GetStringUTFChars(signature, nullptr);
    std::string kernel(name);
    std::string launched(sig);
    env->ReleaseStringUTFChars(symbol, name);
    env->ReleaseStringUTFChars(signature, sig);
    for (const Entry& e : KERNELS) {
        if (kernel != e.name) {
            continue;
        }
        std::string declared = e.signature();
        if (declared != launched) {
            throw_java(env, kernel + " is declared (" + declared + ") in amalgam_kernels.cu but launched as (" +
                                launched + ")");
            return;
        }
        jlong* values = env->GetLongArrayElements(args, nullptr);
        e.launch((unsigned) blocks, (unsigned) block, values, (int) order);
        env->ReleaseLongArrayElements(args, values, JNI_ABORT);
        return;
    }
    throw_java(env, "no kernel " + kernel + " in amalgam_kernels.cu");
}

}
