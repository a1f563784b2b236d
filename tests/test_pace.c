/* The pace governor (graph/pace.h), driven by made-up step times: it finds
 * the fastest thread count, leaves a count that stalls, comes back when the
 * stalls end, and spends little time on probes; and the cgroup quota the
 * default thread count reads. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "graph/parallel.h"
#include "graph/pace.h"

/* Seconds of one step at `threads`, step number `i`. */
typedef double (*cost_fn)(int threads, long i);

typedef struct {
    double elapsed, ideal; /* time taken, and at the best count throughout */
    int last_threads;
    long steps_at[17];     /* steps run at each count */
} sim;

/* The simulated clock, in seconds: it goes on from one simulate to the next. */
static double now = 1000.0;

/* Runs `steps` steps at full threads under cost, best(i) the ideal step. */
static sim simulate(nb_pace *p, int full, long steps, cost_fn cost, cost_fn best, long from) {
    sim s = {0};
    for (long i = from; i < from + steps; i++) {
        int t = nb__pace_begin(p, full, full, 32, now);
        cr_assert(t >= 1 && t <= full, "count %d outside [1,%d]", t, full);
        double dt = cost(t, i);
        now += dt;
        nb__pace_end(p, dt, now);
        s.elapsed += dt;
        s.ideal += best(0, i);
        s.steps_at[t]++;
        s.last_threads = t;
    }
    return s;
}

/* An idle 2-core machine: two threads 1.7 times faster. */
static double idle2(int t, long i) { (void)i; return t == 2 ? 1e-3 / 1.7 : 1e-3; }
static double idle2_best(int t, long i) { (void)t, (void)i; return 1e-3 / 1.7; }

Test(pace, an_idle_machine_keeps_the_configured_count_and_probes_ever_less) {
    nb_pace p = {0};
    sim s = simulate(&p, 2, 20000, idle2, idle2_best, 0);
    cr_assert_eq(s.last_threads, 2);
    cr_assert_eq(p.switches, 0, "%ld switches", p.switches);
    /* the gap doubles from 4 to 1024 steps: 9 probes, then one per 1024 */
    cr_assert(p.probes <= 30, "%ld probes in 20,000 steps: the gap should double", p.probes);
    cr_assert(s.elapsed < 1.01 * s.ideal, "%.4f s against %.4f s at the best count", s.elapsed, s.ideal);
}

/* Beside a busy process: two threads stall, one runs at full speed. */
static double busy2(int t, long i) { (void)i; return t == 2 ? 50e-3 : 1e-3; }
static double busy2_best(int t, long i) { (void)t, (void)i; return 1e-3; }

Test(pace, a_stalling_count_is_left_and_probing_it_again_costs_little) {
    nb_pace p = {0};
    sim s = simulate(&p, 2, 100000, busy2, busy2_best, 0);
    cr_assert_eq(s.last_threads, 1);
    cr_assert(s.steps_at[2] < 200, "%ld of 100,000 steps at the stalling count", s.steps_at[2]);
    cr_assert(s.elapsed < 1.06 * s.ideal, "%.3f s against %.3f s on one thread (%ld probes)", s.elapsed, s.ideal,
              p.probes);
}

/* Busy for the first 20,000 steps, idle after. */
static double busy_then_idle(int t, long i) { return i < 20000 ? busy2(t, i) : idle2(t, i); }

Test(pace, the_count_comes_back_when_the_machine_is_idle_again) {
    nb_pace p = {0};
    sim s = simulate(&p, 2, 20000, busy_then_idle, busy2_best, 0);
    cr_assert_eq(s.last_threads, 1);
    /* a losing probe waits at most 10 s (MAX_WAIT): 10,000 idle steps at 1 ms cover it */
    s = simulate(&p, 2, 30000, busy_then_idle, idle2_best, 20000);
    cr_assert_eq(s.last_threads, 2, "still at %d thread(s) after 30,000 idle steps", s.last_threads);
    cr_assert(s.steps_at[2] > 25000, "%ld of 30,000 idle steps at two threads", s.steps_at[2]);
}

/* Two threads fast at the median, but every 8th step stalls for 20 ms: a
 * one-step probe would pick them, their mean is worse. */
static double heavy_tail(int t, long i) { return t == 2 ? (i % 8 == 5 ? 20e-3 : 0.5e-3) : 1e-3; }
static double heavy_tail_best(int t, long i) { (void)t, (void)i; return 1e-3; }

Test(pace, a_count_fast_at_the_median_but_stalling_on_average_is_left) {
    nb_pace p = {0};
    sim s = simulate(&p, 2, 100000, heavy_tail, heavy_tail_best, 0);
    cr_assert_eq(s.last_threads, 1);
    cr_assert(s.elapsed < 1.08 * s.ideal, "%.3f s against %.3f s on one thread (%ld probes, %ld switches)",
              s.elapsed, s.ideal, p.probes, p.switches);
}

/* 16 threads configured, 4 fastest (the other cores busy). */
static double sixteen(int t, long i) {
    (void)i;
    static const double at[17] = {[1] = 4e-3, [2] = 2.2e-3, [4] = 1.3e-3, [8] = 6e-3, [16] = 40e-3};
    return at[t];
}
static double sixteen_best(int t, long i) { (void)t, (void)i; return 1.3e-3; }

Test(pace, with_many_threads_it_climbs_down_to_the_fastest_count) {
    nb_pace p = {0};
    sim s = simulate(&p, 16, 50000, sixteen, sixteen_best, 0);
    cr_assert_eq(s.last_threads, 4, "ended at %d threads", s.last_threads);
    cr_assert(s.elapsed < 1.08 * s.ideal, "%.3f s against %.3f s", s.elapsed, s.ideal);
}

Test(pace, one_thread_configured_is_left_alone) {
    nb_pace p = {0};
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(nb__pace_begin(&p, 1, 1, 32, i), 1);
        cr_assert(!p.measure);
    }
    cr_assert_eq(p.probes, 0);
}

Test(pace, steps_at_another_batch_keep_the_count_and_are_not_measured) {
    nb_pace p = {0};
    simulate(&p, 2, 5000, busy2, busy2_best, 0);
    cr_assert_eq(p.level, 1);
    const long probes = p.probes;
    for (int i = 0; i < 31; i++) { /* an epoch's last batch, evaluation batches */
        cr_assert_eq(nb__pace_begin(&p, 2, 2, 7, 2000.0 + i), 1);
        cr_assert(!p.measure, "a step at another batch is not timed");
    }
    cr_assert_eq(p.probes, probes);
    cr_assert_eq(p.batch, 32);
    nb__pace_begin(&p, 2, 2, 7, 2100.0); /* the 32nd in a row: now the batch measured */
    cr_assert_eq(p.batch, 7);
    cr_assert_eq(p.level, 1, "the count carries over to the new batch");
}

Test(pace, counts_halve_down_to_one) {
    cr_assert_eq(nb__pace_count(16, 0), 16);
    cr_assert_eq(nb__pace_count(16, 2), 4);
    cr_assert_eq(nb__pace_count(3, 1), 1);
    cr_assert_eq(nb__pace_count(2, 5), 1);
}

Test(pace, the_cgroup_quota_rounds_up_to_whole_cpus) {
    cr_assert_eq(nb__cpu_quota_cpus("max 100000\n"), 0, "no quota");
    cr_assert_eq(nb__cpu_quota_cpus("200000 100000\n"), 2);
    cr_assert_eq(nb__cpu_quota_cpus("150000 100000"), 2);
    cr_assert_eq(nb__cpu_quota_cpus("50000 100000"), 1);
    cr_assert_eq(nb__cpu_quota_cpus("-1 100000"), 0, "cgroup v1's no quota");
    cr_assert_eq(nb__cpu_quota_cpus("400000"), 4, "v2 without a period: 100,000 us");
    cr_assert_eq(nb__cpu_quota_cpus("garbage"), 0);
    cr_assert_eq(nb__cpu_quota_cpus(""), 0);
    cr_assert_eq(nb__cpu_quota_cpus(NULL), 0);
    cr_assert_eq(nb__cpu_quota_cpus("100000 0"), 0, "a zero period is no quota, not a division by zero");
}

Test(pace, a_short_run_leaves_a_stalling_count_within_a_few_steps) {
    nb_pace p = {0};
    sim s = simulate(&p, 2, 20, busy2, busy2_best, 0);
    cr_assert_eq(s.last_threads, 1);
    cr_assert(s.steps_at[2] <= 3, "%ld of 20 steps at the stalling count", s.steps_at[2]);
}

Test(pace, a_new_kind_starts_at_the_count_the_process_last_ran_at) {
    nb_pace p = {0};
    cr_assert_eq(nb__pace_begin(&p, 2, 1, 32, now), 1, "a busy process's next graph starts on one thread");
    nb_pace q = {0};
    cr_assert_eq(nb__pace_begin(&q, 16, 4, 32, now), 4);
    nb_pace r = {0};
    cr_assert_eq(nb__pace_begin(&r, 16, 5, 32, now), 4, "the level at or below the count");
}
