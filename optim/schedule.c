/* optim/schedule.c — learning-rate schedules (formulas in nabla/optim.h).
 *
 * Rates are computed in double from the float config and returned as float,
 * so that a long run of t does not lose precision in the exponent. The
 * per-step functions (lr, momentum, observe) allocate nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/optim.h"

struct nb_schedule {
    nb_schedule_config cfg;
    /* PERFORMANCE: the current rate, the best value seen and how many
     * observations in a row have not beaten it (Keras's `wait`). */
    float lr;
    double best;
    int wait;
    /* ONECYCLE: the rates at the ends of the phases, and where the phases
     * end (in the units of t): the rise at rise_end, the fall back to
     * start_lr at cycle_end (the same point when pct_start = 1 -
     * final_fraction: no fall, as PyTorch's two phases). */
    double start_lr, final_lr, rise_end, cycle_end;
};

static const char *const schedule_names[] = {
    [NB_SCHEDULE_CONSTANT] = "constant",       [NB_SCHEDULE_POWER] = "power",
    [NB_SCHEDULE_EXPONENTIAL] = "exponential", [NB_SCHEDULE_PIECEWISE] = "piecewise",
    [NB_SCHEDULE_PERFORMANCE] = "performance", [NB_SCHEDULE_ONECYCLE] = "1cycle",
};
#define N_KINDS ((int)(sizeof schedule_names / sizeof schedule_names[0]))

static bool kind_ok(nb_schedule_kind kind) { return (int)kind >= 0 && (int)kind < N_KINDS; }

nb_schedule_config nb_schedule_defaults(nb_schedule_kind kind, float lr) {
    /* Every field gets its default whatever the kind, so that a config
     * whose kind is changed afterwards is still sensible. total_steps and
     * the piecewise boundaries have no meaningful default: left 0, they
     * make nb_schedule_new say what is missing. */
    nb_schedule_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr0 = lr;
    c.steps = 1.0f;
    c.power = 1.0f;
    c.factor = 0.5f;
    c.min_lr = 0.0f;
    c.min_delta = 1e-4f;
    c.patience = 5;
    c.total_steps = 0;
    c.max_lr = lr;
    c.div_factor = 10.0f;
    c.final_fraction = 0.1f;
    c.min_momentum = 0.85f;
    c.max_momentum = 0.95f;
    return c;
}

const char *nb_schedule_name(nb_schedule_kind kind) {
    return kind_ok(kind) ? schedule_names[kind] : "unknown";
}

bool nb_schedule_parse(const char *name, nb_schedule_kind *kind) {
    if (!name || !kind) return false;
    for (int k = 0; k < N_KINDS; k++) {
        if (strcmp(name, schedule_names[k]) == 0) {
            *kind = (nb_schedule_kind)k;
            return true;
        }
    }
    return false;
}

/* Each check sets the message and returns false; fields the kind does not
 * use are not looked at. */
static bool positive(const char *what, float v) {
    if (isfinite(v) && v > 0) return true;
    nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: %s is %g, must be finite and > 0", what, (double)v);
    return false;
}

static bool non_negative(const char *what, float v) {
    if (isfinite(v) && v >= 0) return true;
    nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: %s is %g, must be finite and >= 0", what, (double)v);
    return false;
}

static bool unit_interval(const char *what, float v) {
    if (isfinite(v) && v >= 0 && v < 1) return true;
    nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: %s is %g, must be in [0,1)", what, (double)v);
    return false;
}

static bool check_piecewise(const nb_schedule_config *c) {
    int n = c->n_boundaries;
    if (n < 1 || n > NB_SCHEDULE_MAX_PIECES) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: n_boundaries is %d, must be in [1,%d]", n,
                      NB_SCHEDULE_MAX_PIECES);
        return false;
    }
    for (int i = 0; i < n; i++) {
        float b = c->boundaries[i];
        if (!isfinite(b)) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: boundaries[%d] is %g, must be finite", i, (double)b);
            return false;
        }
        if (i > 0 && !(b > c->boundaries[i - 1])) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: boundaries not increasing: boundaries[%d] = %g "
                          "after boundaries[%d] = %g",
                          i, (double)b, i - 1, (double)c->boundaries[i - 1]);
            return false;
        }
    }
    for (int i = 0; i <= n; i++) {
        float v = c->values[i];
        if (!(isfinite(v) && v > 0)) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: values[%d] is %g, must be finite and > 0", i, (double)v);
            return false;
        }
    }
    return true;
}

static bool check_config(const nb_schedule_config *c) {
    switch (c->kind) {
    case NB_SCHEDULE_CONSTANT:
        return positive("lr0", c->lr0);
    case NB_SCHEDULE_POWER:
        return positive("lr0", c->lr0) && positive("steps", c->steps) &&
               positive("power", c->power);
    case NB_SCHEDULE_EXPONENTIAL:
        return positive("lr0", c->lr0) && positive("steps", c->steps);
    case NB_SCHEDULE_PIECEWISE:
        return check_piecewise(c);
    case NB_SCHEDULE_PERFORMANCE:
        if (!positive("lr0", c->lr0)) return false;
        if (!(isfinite(c->factor) && c->factor > 0 && c->factor < 1)) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: factor is %g, must be in (0,1)", (double)c->factor);
            return false;
        }
        if (c->patience < 0) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: patience is %d, must be >= 0", c->patience);
            return false;
        }
        return non_negative("min_lr", c->min_lr) && non_negative("min_delta", c->min_delta);
    case NB_SCHEDULE_ONECYCLE:
        if (c->total_steps < 1) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: total_steps is %ld, must be >= 1", c->total_steps);
            return false;
        }
        if (!positive("max_lr", c->max_lr)) return false;
        if (!(isfinite(c->div_factor) && c->div_factor >= 1)) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: div_factor is %g, must be finite and >= 1",
                          (double)c->div_factor);
            return false;
        }
        if (!unit_interval("final_fraction", c->final_fraction) ||
            !unit_interval("min_momentum", c->min_momentum) ||
            !unit_interval("max_momentum", c->max_momentum))
            return false;
        /* pct_start and final_div_factor: 0 keeps the defaults (a rise over
         * half the cycle, a final rate of start/1000) */
        if (!(isfinite(c->pct_start) && c->pct_start >= 0 &&
              (double)c->pct_start <= 1.0 - (double)c->final_fraction + 1e-6)) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT,
                          "schedule: pct_start is %g, must be 0 (the default: half the cycle) or in "
                          "(0, 1 - final_fraction] = (0, %g]", (double)c->pct_start, 1.0 - (double)c->final_fraction);
            return false;
        }
        if (!(isfinite(c->final_div_factor) && (c->final_div_factor == 0 || c->final_div_factor >= 1))) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT,
                          "schedule: final_div_factor is %g, must be 0 (the default, 1000) or finite and >= 1",
                          (double)c->final_div_factor);
            return false;
        }
        if (c->min_momentum > c->max_momentum) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: min_momentum %g > max_momentum %g",
                          (double)c->min_momentum, (double)c->max_momentum);
            return false;
        }
        return true;
    }
    nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: kind %d outside [0,%d]", (int)c->kind, N_KINDS - 1);
    return false;
}

nb_schedule *nb_schedule_new(const nb_schedule_config *cfg) {
    if (!cfg) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "schedule: config is NULL");
        return NULL;
    }
    if (!check_config(cfg)) return NULL;
    nb_schedule *s = calloc(1, sizeof *s);
    if (!s) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "schedule: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->lr = cfg->lr0;
    s->best = INFINITY; /* Keras starts best at +inf in mode min */
    s->wait = 0;
    if (cfg->kind == NB_SCHEDULE_ONECYCLE) {
        double total = (double)cfg->total_steps;
        s->start_lr = (double)cfg->max_lr / cfg->div_factor;
        s->final_lr = s->start_lr / (cfg->final_div_factor > 0 ? (double)cfg->final_div_factor : 1000.0);
        s->cycle_end = (1.0 - cfg->final_fraction) * total;
        s->rise_end = cfg->pct_start > 0 ? (double)cfg->pct_start * total : s->cycle_end / 2.0;
        /* pct_start = 1 - final_fraction in floats (0.1f + 0.9f) may miss by
         * a rounding: within 1e-6 relative it means no fall */
        if (s->rise_end > s->cycle_end - 1e-6 * s->cycle_end) s->rise_end = s->cycle_end;
    }
    return s;
}

void nb_schedule_free(nb_schedule *s) { free(s); }

/* Linear interpolation from a at u = 0 to b at u = 1. */
static double lerp(double a, double b, double u) { return a + (b - a) * u; }

static double onecycle_lr(const nb_schedule *s, double t) {
    double total = (double)s->cfg.total_steps, max_lr = s->cfg.max_lr;
    if (t < s->rise_end) return lerp(s->start_lr, max_lr, t / s->rise_end);
    if (t < s->cycle_end) return lerp(max_lr, s->start_lr, (t - s->rise_end) / (s->cycle_end - s->rise_end));
    /* Annihilation, from where the cycle left the rate (start_lr, or max_lr
     * when there is no fall); with final_fraction 0 there is none and the
     * rate stays there. */
    double from = s->cycle_end > s->rise_end ? s->start_lr : max_lr;
    double span = total - s->cycle_end;
    if (!(span > 0)) return from;
    if (t >= total) return s->final_lr;
    return lerp(from, s->final_lr, (t - s->cycle_end) / span);
}

float nb_schedule_lr(const nb_schedule *s, double t) {
    if (!s) return 0.0f;
    if (!(t > 0)) t = 0; /* negative (or NaN) t counts as the start */
    const nb_schedule_config *c = &s->cfg;
    switch (c->kind) {
    case NB_SCHEDULE_CONSTANT:
        return c->lr0;
    case NB_SCHEDULE_POWER:
        return (float)(c->lr0 / pow(1.0 + t / c->steps, c->power));
    case NB_SCHEDULE_EXPONENTIAL:
        return (float)(c->lr0 * pow(0.1, t / c->steps));
    case NB_SCHEDULE_PIECEWISE: {
        int i = 0;
        while (i < c->n_boundaries && t >= c->boundaries[i]) i++;
        return c->values[i];
    }
    case NB_SCHEDULE_PERFORMANCE:
        return s->lr;
    case NB_SCHEDULE_ONECYCLE:
        return (float)onecycle_lr(s, t);
    }
    return 0.0f;
}

float nb_schedule_momentum(const nb_schedule *s, double t, float base) {
    if (!s || s->cfg.kind != NB_SCHEDULE_ONECYCLE) return base;
    if (!(t > 0)) t = 0;
    double lo = s->cfg.min_momentum, hi = s->cfg.max_momentum;
    if (t < s->rise_end) return (float)lerp(hi, lo, t / s->rise_end);
    if (t < s->cycle_end) return (float)lerp(lo, hi, (t - s->rise_end) / (s->cycle_end - s->rise_end));
    if (s->cycle_end > s->rise_end) return (float)hi;
    /* no fall: momentum climbs back to max while the rate anneals */
    double span = (double)s->cfg.total_steps - s->cycle_end;
    if (!(span > 0)) return (float)lo;
    return (float)lerp(lo, hi, fmin(1.0, (t - s->cycle_end) / span));
}

void nb_schedule_get_state(const nb_schedule *s, float *lr, double *best, int *wait) {
    const bool on = s && s->cfg.kind == NB_SCHEDULE_PERFORMANCE;
    if (lr) *lr = on ? s->lr : 0.0f;
    if (best) *best = on ? s->best : 0.0;
    if (wait) *wait = on ? s->wait : 0;
}

void nb_schedule_set_state(nb_schedule *s, float lr, double best, int wait) {
    if (!s || s->cfg.kind != NB_SCHEDULE_PERFORMANCE) return;
    s->lr = lr, s->best = best, s->wait = wait;
}

bool nb_schedule_observe(nb_schedule *s, double value) {
    if (!s || s->cfg.kind != NB_SCHEDULE_PERFORMANCE) return false;
    const nb_schedule_config *c = &s->cfg;
    /* Keras's ReduceLROnPlateau in mode "min" with cooldown 0: a NaN never
     * compares as an improvement, so it counts as a plateau. */
    if (value < s->best - c->min_delta) {
        s->best = value;
        s->wait = 0;
        return false;
    }
    s->wait++;
    if (s->wait < c->patience) return false;
    /* At the floor Keras neither reduces nor restarts the count, so every
     * later plateau finds wait >= patience again; that changes nothing. */
    if (!(s->lr > c->min_lr)) return false;
    double next = (double)s->lr * c->factor;
    if (next < c->min_lr) next = c->min_lr;
    s->lr = (float)next;
    s->wait = 0;
    return true;
}
