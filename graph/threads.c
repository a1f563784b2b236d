/* graph/threads.c — the thread count and BLIS's kernel choice. */
#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/threads.h"

static int n_threads = 1;          /* the configured count */
static atomic_int settled;         /* the count regions outside passes take; 0 = n_threads */
static atomic_bool adaptive = true;
static _Thread_local int pass_threads; /* the count of the pass this thread runs; 0 = none */
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

int nb__cpu_quota_cpus(const char *text) {
    if (!text) return 0;
    char *end;
    while (*text == ' ' || *text == '\t') text++;
    if (!strncmp(text, "max", 3) || *text == '-') return 0; /* no quota (v2 "max", v1 -1) */
    long long quota = strtoll(text, &end, 10);
    if (end == text || quota <= 0) return 0;
    long long period = 100000; /* v2's default when the text gives none */
    if (*end == ' ' || *end == '\t') {
        const char *q = end;
        period = strtoll(q, &end, 10);
        if (end == q || period <= 0) return 0;
    }
    long long cpus = (quota + period - 1) / period;
    return cpus > NB_MAX_THREADS ? NB_MAX_THREADS : (int)cpus;
}

static int read_quota(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (int)n;
}

/* CPUs the cgroup's quota allows (v2, then v1), 0 for no quota. */
static int cgroup_cpus(void) {
    char buf[128], period[64];
    if (read_quota("/sys/fs/cgroup/cpu.max", buf, sizeof buf)) return nb__cpu_quota_cpus(buf);
    if (read_quota("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", buf, sizeof buf) &&
        read_quota("/sys/fs/cgroup/cpu/cpu.cfs_period_us", period, sizeof period)) {
        size_t n = strcspn(buf, "\n");
        snprintf(buf + n, sizeof buf - n, " %s", period);
        return nb__cpu_quota_cpus(buf);
    }
    return 0;
}

static void init(void) {
    pick_blis_arch();
    bli_init();
    int n = env_threads("NABLA_NUM_THREADS");
    if (!n) n = env_threads("OMP_NUM_THREADS");
    if (!n) {
        n = omp_get_num_procs(); /* the affinity mask's CPUs */
        int quota = cgroup_cpus();
        if (quota >= 1 && quota < n) n = quota;
    }
    n_threads = n >= 1 ? n : 1;
    const char *a = getenv("NABLA_ADAPT_THREADS");
    if (a && !strcmp(a, "0")) atomic_store(&adaptive, false);
}

void nb__runtime_init(void) { pthread_once(&once, init); }

int nb__threads(void) { return pass_threads ? pass_threads : nb__threads_settled(); }

int nb__threads_configured(void) { return n_threads; }

int nb__threads_settled(void) {
    int s = atomic_load_explicit(&settled, memory_order_relaxed);
    return s >= 1 && s < n_threads ? s : n_threads;
}

bool nb__threads_adaptive(void) { return atomic_load_explicit(&adaptive, memory_order_relaxed); }

void nb__threads_for_pass(int n, bool settle) {
    pass_threads = n;
    if (settle && n >= 1) atomic_store_explicit(&settled, n, memory_order_relaxed);
}

void nb_set_num_threads(int n) {
    nb__runtime_init();
    n_threads = n < 1 ? 1 : n > NB_MAX_THREADS ? NB_MAX_THREADS : n;
    atomic_store(&settled, 0);
}

int nb_get_num_threads(void) {
    nb__runtime_init();
    return n_threads;
}

void nb_set_thread_adaptation(bool on) {
    nb__runtime_init();
    atomic_store(&adaptive, on);
    if (!on) atomic_store(&settled, 0);
}

bool nb_get_thread_adaptation(void) {
    nb__runtime_init();
    return nb__threads_adaptive();
}

int nb_get_active_threads(void) {
    nb__runtime_init();
    return nb__threads();
}

const char *nb_blis_arch(void) {
    nb__runtime_init();
    return bli_arch_string(bli_arch_query_id());
}

const char *nb_blis_kernel(void) {
    nb__runtime_init();
    return bli_info_get_gemm_ukr_impl_string(BLIS_NAT, BLIS_FLOAT);
}
