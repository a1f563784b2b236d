/* graph/pace.h — the pace governor: how many threads a step runs on.
 *
 * Two threads meet at barriers many times a step. When another busy
 * process shares the cores, the scheduler parks one of them now and then,
 * and the other waits at the next barrier for a whole time slice: a step
 * of 0.3 ms took 4 to 108 times longer than on one thread (issue 9). No
 * wait policy alone fixes that, so the governor measures. A step here is
 * the time from one forward pass of a graph to its next of the same kind
 * (training or inference): the forward and backward passes, the optimizer's
 * update and the gather of the next batch, everything a thread count makes
 * faster or slower. Each kind keeps the wall time of its recent steps at
 * each thread count it has tried (the configured count, halved down to 1)
 * and runs at the fastest.
 *
 * Now and then it probes the next count down or up for a few steps
 * (stopped early once the probe has clearly lost or won; the first probe
 * comes right after the first measured step, and a kind's first step
 * starts at the count the process's last step ran at). A probe that wins moves
 * the steps there on trial: if within the next 32 steps their average
 * turns worse than at the count they left (a stall the probe did not happen
 * to meet), they move back. A probe or trial that loses waits, before the
 * next probe that way, twice as many steps as last time and at least 100
 * times the time it lost (at most 10 s), so probing costs at most about 1%
 * even when a probe is 100 times slower. A step that suddenly takes over
 * twice its usual time (the machine became busy) makes the next steps a
 * probe of fewer threads. Results do not depend on the count (every op
 * gives the same bits at any count), so the governor changes speed only.
 *
 * Steps at another batch than the one a kind measures (an epoch's last,
 * smaller batch) run at its current count and are not measured; after 32
 * of them in a row it measures the new batch instead. The first step at a
 * batch is not measured either (cold caches, planning).
 *
 * The logic is a pure function of the times it is given, so tests drive
 * it with made-up times (tests/test_pace.c). */
#ifndef NABLA_GRAPH_PACE_H
#define NABLA_GRAPH_PACE_H

#include <stdbool.h>

/* Thread counts a governor chooses among: full, full/2, ..., 1. */
#define NB_PACE_LEVELS 12

typedef struct nb_pace {
    int full;                     /* the configured count the levels come from */
    int batch;                    /* the batch measured; 0 before the first pass */
    int other_batch;              /* steps in a row at another batch */
    int warm;                     /* steps seen at this batch */
    int level;                    /* the current count is full >> level (at least 1) */
    int probing;                  /* the level this step probes, or -1 */
    int probe_left;               /* steps left in the probe */
    double probe_sum;             /* seconds of the probe's steps so far */
    int probe_done;               /* and their number */
    int from, trial;              /* after a switch: the level left, steps left on trial */
    double trial_excess;          /* seconds the trial lost against the level left */
    bool measure;                 /* this step is timed */
    bool down_first;              /* which way the next probe looks first */
    int since_probe;              /* measured steps since the last probe */
    int gap[2];                   /* steps between probes: [0] fewer threads, [1] more */
    double not_before[2];         /* and the earliest time (seconds) of the next */
    double est[NB_PACE_LEVELS];   /* seconds per step at each level; 0 = unknown */
    double started;               /* when this step started */
    long probes, switches;        /* counts, for tests and diagnostics */
} nb_pace;

/* The count to run a step at, given the configured count, the step's batch
 * and the time now in seconds; remembers what the step is for
 * nb__pace_end. A kind's first step starts at `start` (the count the
 * process's last step ran at: a new graph on a busy machine need not find
 * out again). full < 2 always gives full, with no bookkeeping. */
int nb__pace_begin(nb_pace *p, int full, int start, int batch, double now);

/* Records that the step begun last took `seconds` and ended at `now`. */
void nb__pace_end(nb_pace *p, double seconds, double now);

/* The count of a level: full >> level, at least 1. */
int nb__pace_count(int full, int level);

/* Monotonic seconds (a vDSO clock read: no system call). */
double nb__pace_now(void);

#endif
