/* graph/threads.c — the thread count and BLIS's kernel choice. */
#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

#include "graph/internal.h"
#include "nabla/threads.h"

static int n_threads = 1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* BLIS 0.9.0 picks its reference kernels on CPUs it does not know (Zen 4/5),
 * about 5x slower. Choose from CPUID before BLIS initializes, unless the
 * user chose: skx needs AVX-512 F/DQ/BW/VL, haswell AVX2 and FMA. */
static void pick_blis_arch(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (getenv("BLIS_ARCH_TYPE")) return;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        setenv("BLIS_ARCH_TYPE", "0", 0); /* arch_t id of skx */
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        setenv("BLIS_ARCH_TYPE", "3", 0); /* haswell */
#endif
}

static int env_threads(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10); /* "4" or the first of an OpenMP list "4,2" */
    return end != s && v >= 1 && v <= NB_MAX_THREADS ? (int)v : 0;
}

static void init(void) {
    pick_blis_arch();
    bli_init();
    int n = env_threads("NABLA_NUM_THREADS");
    if (!n) n = env_threads("OMP_NUM_THREADS");
    if (!n) n = omp_get_num_procs();
    n_threads = n >= 1 ? n : 1;
}

void nb__runtime_init(void) { pthread_once(&once, init); }

int nb__threads(void) { return n_threads; }

void nb_set_num_threads(int n) {
    nb__runtime_init();
    n_threads = n < 1 ? 1 : n > NB_MAX_THREADS ? NB_MAX_THREADS : n;
}

int nb_get_num_threads(void) {
    nb__runtime_init();
    return n_threads;
}

const char *nb_blis_arch(void) {
    nb__runtime_init();
    return bli_arch_string(bli_arch_query_id());
}

const char *nb_blis_kernel(void) {
    nb__runtime_init();
    return bli_info_get_gemm_ukr_impl_string(BLIS_NAT, BLIS_FLOAT);
}
