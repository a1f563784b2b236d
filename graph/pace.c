/* graph/pace.c — the pace governor (see graph/pace.h). */
#include <string.h>
#include <time.h>

#include "graph/pace.h"

enum {
    MIN_GAP = 4,         /* measured steps before the first probe, and after a switch */
    MAX_GAP = 1024,      /* steps between probes that keep losing */
    OTHER_BATCH_MAX = 32, /* steps at another batch before it is the one measured */
    PROBE_STEPS = 4,     /* a probe's length: one step could meet no stall by luck */
    TRIAL_STEPS = 32     /* steps after a switch in which a worse average moves back */
};

/* A losing probe waits this many times what it lost before the next one
 * that way: probing then costs at most 1/LOSS_WAIT of the time. */
#define LOSS_WAIT 100.0
/* ... but never longer than this many seconds, so a machine that became
 * idle again is noticed. */
#define MAX_WAIT 10.0
/* A probe must beat the current count by this factor to move the pass:
 * one sample against an average, and switching back costs a probe. */
#define WIN 0.9
/* A pass this many times slower than usual makes the next one a probe of
 * fewer threads. */
#define JUMP 2.0
/* Weight of a new time in the running average at the current count. */
#define EWMA 0.25

int nb__pace_count(int full, int level) {
    int n = full >> level;
    return n > 1 ? n : 1;
}

/* The deepest level, where the count is 1. */
static int last_level(int full) {
    int l = 0;
    while (nb__pace_count(full, l) > 1 && l < NB_PACE_LEVELS - 1) l++;
    return l;
}

/* The level whose count is nearest below or at n. */
static int level_of(int full, int n) {
    int l = 0;
    while (nb__pace_count(full, l) > n && l < last_level(full)) l++;
    return l;
}

static void reset(nb_pace *p, int full, int batch, int start) {
    int level = p->full == full && p->batch != 0 ? p->level : level_of(full, start);
    memset(p, 0, sizeof *p);
    p->full = full;
    p->batch = batch;
    p->level = level;
    p->probing = -1;
    p->down_first = true;
    p->gap[0] = p->gap[1] = MIN_GAP;
}

/* Moves the steps to level `to`, the winner of a probe, on trial. */
static void switch_to(nb_pace *p, int to) {
    p->from = p->level;
    p->trial = TRIAL_STEPS;
    p->trial_excess = 0;
    p->down_first = to > p->level; /* keep going the way that paid */
    p->level = to;
    p->switches++;
    p->gap[0] = p->gap[1] = MIN_GAP;
    p->not_before[0] = p->not_before[1] = 0;
}

/* A probe or trial towards `way` (0: fewer threads) lost `lost` seconds:
 * wait longer before the next one that way. */
static void penalize(nb_pace *p, int way, double lost, double now) {
    p->gap[way] = p->gap[way] * 2 < MAX_GAP ? p->gap[way] * 2 : MAX_GAP;
    double wait = LOSS_WAIT * (lost > 0 ? lost : 0);
    if (wait > MAX_WAIT) wait = MAX_WAIT;
    p->not_before[way] = wait > 0 ? now + wait : 0;
    p->down_first = way != 0; /* look the other way next */
}

/* Starts a probe of a neighbouring level when one is due. */
static void maybe_probe(nb_pace *p, double now) {
    /* the first probe comes after one measured step: a short run (an epoch
     * of 20 steps at batch 256) must not spend itself at a stalling count */
    const int min_gap = p->probes == 0 ? 1 : MIN_GAP;
    if (p->est[p->level] <= 0 || p->trial > 0 || ++p->since_probe < min_gap) return;
    const int last = last_level(p->full);
    for (int k = 0; k < 2; k++) {
        const int way = (k == 0) == p->down_first ? 0 : 1;
        const int to = way == 0 ? p->level + 1 : p->level - 1;
        if (to < 0 || to > last || (p->probes > 0 && p->since_probe < p->gap[way]) || now < p->not_before[way])
            continue;
        p->probing = to;
        p->probe_left = PROBE_STEPS;
        p->probe_sum = 0;
        p->probe_done = 0;
        return;
    }
}

int nb__pace_begin(nb_pace *p, int full, int start, int batch, double now) {
    p->measure = false;
    if (full < 2) {
        p->probing = -1;
        return full < 1 ? 1 : full;
    }
    if (p->full != full || p->batch == 0) reset(p, full, batch, start);
    if (batch != p->batch) {
        p->probing = -1;
        if (++p->other_batch < OTHER_BATCH_MAX) return nb__pace_count(full, p->level);
        reset(p, full, batch, start);
    }
    p->other_batch = 0;
    p->started = now;
    if (p->warm++ == 0) return nb__pace_count(full, p->level); /* cold: not measured */
    p->measure = true;
    if (p->probing < 0) maybe_probe(p, now);
    return nb__pace_count(full, p->probing >= 0 ? p->probing : p->level);
}

/* A step at the current level: the running average, a jump, the trial. */
static void steady(nb_pace *p, double seconds, double now) {
    double *cur = &p->est[p->level];
    if (*cur > 0 && seconds > JUMP * *cur) { /* the machine got busy: look down soon */
        p->gap[0] = MIN_GAP;
        p->not_before[0] = 0;
        p->down_first = true;
    }
    *cur = *cur > 0 ? *cur + EWMA * (seconds - *cur) : seconds;
    if (p->trial == 0) return;
    p->trial--;
    const double left = p->est[p->from];
    p->trial_excess += seconds - left;
    if (left > 0 && *cur * WIN > left) { /* worse than where it came from: back */
        const int way = p->level > p->from ? 0 : 1;
        p->level = p->from;
        p->trial = 0;
        penalize(p, way, p->trial_excess, now);
    }
}

void nb__pace_end(nb_pace *p, double seconds, double now) {
    if (!p->measure) return;
    p->measure = false;
    if (seconds <= 0) seconds = 1e-9;
    if (p->probing < 0) {
        steady(p, seconds, now);
        return;
    }
    const double cur = p->est[p->level];
    const int to = p->probing, way = to > p->level ? 0 : 1;
    p->probe_sum += seconds;
    p->probe_done++;
    /* goes on while it could still win and has not clearly won or lost: a
     * probe twice as fast after two steps need not wait for four, nor one
     * slower than the current count by more than the margin */
    const bool clear_win = p->probe_done >= 2 && p->probe_sum < 0.5 * p->probe_done * cur;
    const bool clear_loss = p->probe_done >= 2 && p->probe_sum * WIN > p->probe_done * cur;
    if (clear_win) p->probe_left = 0;
    else if (--p->probe_left > 0 && !clear_loss && p->probe_sum <= PROBE_STEPS * WIN * cur) return;
    p->probing = -1;
    p->probes++;
    p->since_probe = 0;
    const double mean = p->probe_sum / p->probe_done;
    p->est[to] = mean; /* an older time at that count says little now */
    if (p->probe_left == 0 && mean < WIN * cur) {
        switch_to(p, to);
        return;
    }
    penalize(p, way, p->probe_sum - p->probe_done * cur, now);
}

double nb__pace_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
