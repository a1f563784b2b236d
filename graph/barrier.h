/* graph/barrier.h — the barrier nabla's teams meet at.
 *
 * libgomp's barrier spins for about 300,000 rounds (milliseconds) before
 * it sleeps. When another busy process shares the cores and the scheduler
 * has parked a thread the others wait for, that spinning keeps a core
 * from the parked thread for a whole time slice. This one spins for at
 * most NB_BARRIER_SPIN_US microseconds, long enough to cover the waits of
 * an idle machine (a thread waits through the serial ops between two
 * shared products), then sleeps on a futex, which frees the core so the
 * kernel can run the late thread there. The last thread to arrive wakes
 * the sleepers, with one system call only when someone sleeps. */
#ifndef NABLA_GRAPH_BARRIER_H
#define NABLA_GRAPH_BARRIER_H

#include <stdatomic.h>

#define NB_BARRIER_SPIN_US 200

typedef struct nb_barrier {
    _Alignas(64) atomic_uint arrived;
    _Alignas(64) atomic_uint generation;
    atomic_int sleepers;
    atomic_int count; /* threads that meet here */
} nb_barrier;

/* A barrier for the threads of the parallel region about to open; each of
 * them calls nb__team_join(b) first (the region may get fewer threads than
 * it asked for). */
void nb__barrier_init(nb_barrier *b);

/* Makes b the barrier nb__team_sync meets at for the calling thread, one of
 * `threads` in its region; NULL leaves the region. */
void nb__team_join(nb_barrier *b, int threads);

/* Waits until every thread of the calling thread's region has arrived. */
void nb__team_sync(void);

#endif
