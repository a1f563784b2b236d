/* graph/barrier.c — a barrier that spins briefly, then sleeps (see barrier.h). */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "graph/barrier.h"

static _Thread_local nb_barrier *current;

void nb__barrier_init(nb_barrier *b) {
    atomic_init(&b->arrived, 0);
    atomic_init(&b->generation, 0);
    atomic_init(&b->sleepers, 0);
    atomic_init(&b->count, 1);
}

void nb__team_join(nb_barrier *b, int threads) {
    if (b) atomic_store_explicit(&b->count, threads, memory_order_relaxed);
    current = b;
}

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void wait_at(nb_barrier *b) {
    const unsigned gen = atomic_load_explicit(&b->generation, memory_order_acquire);
    const unsigned n = (unsigned)atomic_load_explicit(&b->count, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) + 1 == n) {
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
        atomic_fetch_add(&b->generation, 1); /* seq_cst: ordered with the sleepers' count */
        if (atomic_load(&b->sleepers) > 0)
            syscall(SYS_futex, (void *)&b->generation, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        return;
    }
    const long until = now_ns() + NB_BARRIER_SPIN_US * 1000L;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&b->generation, memory_order_acquire) != gen) return;
        cpu_relax();
        if (i % 64 == 0 && now_ns() > until) break;
    }
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(&b->generation) == gen)
        syscall(SYS_futex, (void *)&b->generation, FUTEX_WAIT_PRIVATE, gen, NULL, NULL, 0);
    atomic_fetch_sub(&b->sleepers, 1);
}

void nb__team_sync(void) {
    if (current) {
        wait_at(current);
    } else { /* a region that did not join: OpenMP's own */
#pragma omp barrier
    }
}
