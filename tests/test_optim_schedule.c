/* Learning-rate schedules: every kind's rate at chosen t against its
 * formula computed here in double, the 1cycle momentum curve, reduce on
 * plateau through a scripted run of observations, names, and every bad
 * config refused with its message. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "nabla/optim.h"
#include "nabla/tensor.h"

/* The schedule returns float: compare with a relative tolerance of a few
 * float ulps, plus a tiny absolute one for rates near 0. */
#define assert_rate(GOT, WANT)                                                           \
    do {                                                                                 \
        double got_ = (GOT), want_ = (WANT);                                             \
        cr_assert(fabs(got_ - want_) <= 3e-7 * fabs(want_) + 1e-12,                      \
                  "%s: got %.9g, want %.9g", #GOT, got_, want_);                          \
    } while (0)

static nb_schedule *make(const nb_schedule_config *c) {
    nb_schedule *s = nb_schedule_new(c);
    cr_assert(s, "nb_schedule_new failed: %s", nb_last_error());
    return s;
}

Test(schedule, defaults_are_the_documented_ones) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_POWER, 0.02f);
    cr_assert_eq(c.kind, NB_SCHEDULE_POWER);
    cr_assert_eq(c.lr0, 0.02f);
    cr_assert_eq(c.max_lr, 0.02f);
    cr_assert_eq(c.steps, 1.0f);
    cr_assert_eq(c.power, 1.0f);
    cr_assert_eq(c.factor, 0.5f);
    cr_assert_eq(c.min_lr, 0.0f);
    cr_assert_eq(c.min_delta, 1e-4f);
    cr_assert_eq(c.patience, 5);
    cr_assert_eq(c.div_factor, 10.0f);
    cr_assert_eq(c.final_fraction, 0.1f);
    cr_assert_eq(c.min_momentum, 0.85f);
    cr_assert_eq(c.max_momentum, 0.95f);
    cr_assert_eq(c.n_boundaries, 0);
    cr_assert_eq(c.total_steps, 0);
    /* The ones without a meaningful default make nb_schedule_new say so. */
    c = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 0.1f);
    cr_assert_null(nb_schedule_new(&c));
    cr_assert(strstr(nb_last_error(), "total_steps"), "%s", nb_last_error());
    c = nb_schedule_defaults(NB_SCHEDULE_PIECEWISE, 0.1f);
    cr_assert_null(nb_schedule_new(&c));
    cr_assert(strstr(nb_last_error(), "n_boundaries"), "%s", nb_last_error());
}

Test(schedule, names_and_parse_round_trip) {
    const char *want[] = {"constant", "power", "exponential", "piecewise", "performance",
                          "1cycle"};
    for (int k = NB_SCHEDULE_CONSTANT; k <= NB_SCHEDULE_ONECYCLE; k++) {
        const char *name = nb_schedule_name((nb_schedule_kind)k);
        cr_assert_str_eq(name, want[k]);
        nb_schedule_kind back = (nb_schedule_kind)-1;
        cr_assert(nb_schedule_parse(name, &back), "%s does not parse", name);
        cr_assert_eq((int)back, k);
    }
    nb_schedule_kind kept = NB_SCHEDULE_EXPONENTIAL;
    cr_assert_not(nb_schedule_parse("onecycle", &kept));
    cr_assert_not(nb_schedule_parse("Power", &kept));
    cr_assert_not(nb_schedule_parse("", &kept));
    cr_assert_not(nb_schedule_parse(NULL, &kept));
    cr_assert_not(nb_schedule_parse("power", NULL));
    cr_assert_eq(kept, NB_SCHEDULE_EXPONENTIAL, "a failed parse changed *kind");
    cr_assert_str_eq(nb_schedule_name((nb_schedule_kind)99), "unknown");
    cr_assert_str_eq(nb_schedule_name((nb_schedule_kind)-1), "unknown");
}

Test(schedule, constant_is_lr0_at_every_t) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_CONSTANT, 0.003f);
    nb_schedule *s = make(&c);
    const double ts[] = {-5, 0, 1, 17.5, 1e9};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        cr_assert_eq(nb_schedule_lr(s, ts[i]), 0.003f, "t = %g", ts[i]);
    cr_assert_eq(nb_schedule_momentum(s, 3, 0.9f), 0.9f);
    cr_assert_not(nb_schedule_observe(s, 1.0));
    nb_schedule_free(s);
}

Test(schedule, power_follows_lr0_over_one_plus_t_over_steps_to_the_power) {
    /* Defaults (steps 1, power 1): lr0 / (1 + t). */
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_POWER, 0.01f);
    nb_schedule *s = make(&c);
    const double ts[] = {0, 1, 2, 9, 99, 12345.5};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        assert_rate(nb_schedule_lr(s, ts[i]), 0.01 / (1.0 + ts[i]));
    assert_rate(nb_schedule_lr(s, 1), 0.005);
    assert_rate(nb_schedule_lr(s, -7), 0.01); /* negative t counts as 0 */
    nb_schedule_free(s);

    c.steps = 20.0f;
    c.power = 0.5f;
    s = make(&c);
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        double want = (double)0.01f / sqrt(1.0 + ts[i] / 20.0);
        assert_rate(nb_schedule_lr(s, ts[i]), want);
    }
    assert_rate(nb_schedule_lr(s, 60), (double)0.01f / 2.0); /* 1/sqrt(4) */
    nb_schedule_free(s);

    c.power = 2.0f;
    s = make(&c);
    assert_rate(nb_schedule_lr(s, 20), (double)0.01f / 4.0);
    assert_rate(nb_schedule_lr(s, 5), (double)0.01f / (1.25 * 1.25));
    nb_schedule_free(s);
}

Test(schedule, exponential_divides_by_ten_every_steps) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_EXPONENTIAL, 0.01f);
    nb_schedule *s = make(&c);
    assert_rate(nb_schedule_lr(s, 0), (double)0.01f);
    assert_rate(nb_schedule_lr(s, 1), (double)0.01f / 10);
    assert_rate(nb_schedule_lr(s, 3), (double)0.01f / 1000);
    assert_rate(nb_schedule_lr(s, -2), (double)0.01f);
    nb_schedule_free(s);

    c.steps = 50.0f;
    s = make(&c);
    const double ts[] = {0, 1, 25, 50, 75, 100, 333.25};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        assert_rate(nb_schedule_lr(s, ts[i]), (double)0.01f * pow(0.1, ts[i] / 50.0));
    assert_rate(nb_schedule_lr(s, 25), (double)0.01f / sqrt(10.0));
    assert_rate(nb_schedule_lr(s, 100), (double)0.01f / 100);
    nb_schedule_free(s);
}

Test(schedule, piecewise_changes_at_each_boundary) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_PIECEWISE, 0);
    c.n_boundaries = 3;
    c.boundaries[0] = 5, c.boundaries[1] = 15, c.boundaries[2] = 30;
    c.values[0] = 0.1f, c.values[1] = 0.05f, c.values[2] = 0.02f, c.values[3] = 0.01f;
    nb_schedule *s = make(&c);
    struct { double t; float want; } cases[] = {
        {-3, 0.1f},    {0, 0.1f},    {4, 0.1f},     {4.999, 0.1f}, {5, 0.05f},
        {5.001, 0.05f}, {14, 0.05f}, {15, 0.02f},   {29.9, 0.02f}, {30, 0.01f},
        {31, 0.01f},   {1e6, 0.01f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(nb_schedule_lr(s, cases[i].t), cases[i].want, "t = %g: got %g, want %g",
                     cases[i].t, (double)nb_schedule_lr(s, cases[i].t), (double)cases[i].want);
    nb_schedule_free(s);

    /* One boundary, and the most there may be. */
    c.n_boundaries = 1;
    c.boundaries[0] = 2;
    s = make(&c);
    cr_assert_eq(nb_schedule_lr(s, 1.5), 0.1f);
    cr_assert_eq(nb_schedule_lr(s, 2), 0.05f);
    nb_schedule_free(s);

    c.n_boundaries = NB_SCHEDULE_MAX_PIECES;
    for (int i = 0; i < NB_SCHEDULE_MAX_PIECES; i++) c.boundaries[i] = (float)(10 * (i + 1));
    for (int i = 0; i <= NB_SCHEDULE_MAX_PIECES; i++) c.values[i] = (float)(i + 1);
    s = make(&c);
    for (int i = 0; i <= NB_SCHEDULE_MAX_PIECES; i++) {
        cr_assert_eq(nb_schedule_lr(s, 10.0 * i), (float)(i + 1), "t = %d", 10 * i);
        cr_assert_eq(nb_schedule_lr(s, 10.0 * i + 9.5), (float)(i + 1), "t = %g", 10 * i + 9.5);
    }
    nb_schedule_free(s);
}

/* 1cycle written from the description: phases end at h = (1-f)T/2 and
 * 2h = (1-f)T; rates lo = max/div, end = lo/1000. */
static double ref_onecycle_lr(double t, double T, double max, double div, double f) {
    double lo = max / div, end = lo / 1000, h = (1 - f) * T / 2;
    if (t < 0) t = 0;
    if (t <= h) return lo + (max - lo) * (t / h);
    if (t <= 2 * h) return max - (max - lo) * ((t - h) / h);
    if (f == 0) return lo;
    if (t >= T) return end;
    return lo - (lo - end) * ((t - 2 * h) / (T - 2 * h));
}

static double ref_onecycle_momentum(double t, double T, double f, double mlo, double mhi) {
    double h = (1 - f) * T / 2;
    if (t < 0) t = 0;
    if (t <= h) return mhi - (mhi - mlo) * (t / h);
    if (t <= 2 * h) return mlo + (mhi - mlo) * ((t - h) / h);
    return mhi;
}

Test(schedule, onecycle_rate_at_start_quarter_middle_end_and_annihilation) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 0.1f);
    c.total_steps = 1000;
    nb_schedule *s = make(&c);
    double max = (double)0.1f, lo = max / 10, end = lo / 1000, f = (double)0.1f;
    double h = (1 - f) * 1000 / 2; /* 450 */
    /* Start, quarter of the cycle, middle (the peak), three quarters, end of
     * the cycle, then the annihilation and after. */
    assert_rate(nb_schedule_lr(s, 0), lo);
    assert_rate(nb_schedule_lr(s, -10), lo);
    assert_rate(nb_schedule_lr(s, h / 2), (lo + max) / 2);
    assert_rate(nb_schedule_lr(s, h), max);
    assert_rate(nb_schedule_lr(s, 1.5 * h), (lo + max) / 2);
    assert_rate(nb_schedule_lr(s, 2 * h), lo);
    assert_rate(nb_schedule_lr(s, 2 * h + (1000 - 2 * h) / 2), (lo + end) / 2);
    assert_rate(nb_schedule_lr(s, 1000), end);
    assert_rate(nb_schedule_lr(s, 5000), end);
    /* Every step of the run. */
    for (int t = 0; t <= 1100; t++)
        assert_rate(nb_schedule_lr(s, t), ref_onecycle_lr(t, 1000, max, 10, f));
    nb_schedule_free(s);

    /* Another shape: div 25, a fifth of the run annihilating, odd length. */
    c.max_lr = 0.5f;
    c.div_factor = 25.0f;
    c.final_fraction = 0.2f;
    c.total_steps = 37;
    s = make(&c);
    for (double t = 0; t <= 40; t += 0.25)
        assert_rate(nb_schedule_lr(s, t),
                    ref_onecycle_lr(t, 37, (double)0.5f, 25, (double)0.2f));
    assert_rate(nb_schedule_lr(s, 0), (double)0.5f / 25);
    assert_rate(nb_schedule_lr(s, 37), (double)0.5f / 25 / 1000);
    nb_schedule_free(s);
}

Test(schedule, onecycle_without_annihilation_stays_at_the_start_rate) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 0.2f);
    c.total_steps = 100;
    c.final_fraction = 0;
    nb_schedule *s = make(&c);
    double max = (double)0.2f, lo = max / 10;
    assert_rate(nb_schedule_lr(s, 50), max);
    assert_rate(nb_schedule_lr(s, 99), lo + (max - lo) * (1.0 / 50));
    assert_rate(nb_schedule_lr(s, 100), lo);
    assert_rate(nb_schedule_lr(s, 1000), lo);
    for (int t = 0; t <= 120; t++)
        assert_rate(nb_schedule_lr(s, t), ref_onecycle_lr(t, 100, max, 10, 0));
    cr_assert_eq(nb_schedule_momentum(s, 100, 0.5f), 0.95f);
    nb_schedule_free(s);
}

Test(schedule, onecycle_momentum_moves_inversely_to_the_rate) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 0.1f);
    c.total_steps = 1000;
    nb_schedule *s = make(&c);
    double lo = (double)0.85f, hi = (double)0.95f, h = 450;
    assert_rate(nb_schedule_momentum(s, 0, 0.5f), hi);
    assert_rate(nb_schedule_momentum(s, h / 2, 0.5f), (lo + hi) / 2);
    assert_rate(nb_schedule_momentum(s, h, 0.5f), lo);
    assert_rate(nb_schedule_momentum(s, 1.5 * h, 0.5f), (lo + hi) / 2);
    assert_rate(nb_schedule_momentum(s, 2 * h, 0.5f), hi);
    assert_rate(nb_schedule_momentum(s, 950, 0.5f), hi);
    assert_rate(nb_schedule_momentum(s, 1000, 0.5f), hi);
    assert_rate(nb_schedule_momentum(s, 1e7, 0.5f), hi);
    assert_rate(nb_schedule_momentum(s, -1, 0.5f), hi);
    for (int t = 0; t <= 1000; t += 7)
        assert_rate(nb_schedule_momentum(s, t, 0.5f),
                    ref_onecycle_momentum(t, 1000, (double)0.1f, lo, hi));
    nb_schedule_free(s);

    c.min_momentum = 0.8f;
    c.max_momentum = 0.99f;
    c.final_fraction = 0.3f;
    c.total_steps = 64;
    s = make(&c);
    for (double t = 0; t <= 70; t += 0.5)
        assert_rate(nb_schedule_momentum(s, t, 0.0f),
                    ref_onecycle_momentum(t, 64, (double)0.3f, (double)0.8f, (double)0.99f));
    nb_schedule_free(s);

    /* Equal momenta are allowed: a flat curve. */
    c.min_momentum = c.max_momentum = 0.9f;
    s = make(&c);
    cr_assert_eq(nb_schedule_momentum(s, 16, 0.0f), 0.9f);
    nb_schedule_free(s);
}

/* 1cycle with pct_start p and final_div_factor d, written from the header's
 * formula independently of the one above: r = pT, c = (1-f)T, lo = max/div,
 * end = lo/d; the annihilation starts from max when r = c. */
static double ref_onecycle_pct(double t, double T, double max, double div, double f, double p, double d) {
    const double lo = max / div, end = lo / d, r = p * T, c = (1 - f) * T;
    const double from = c > r ? lo : max;
    if (t < 0) t = 0;
    if (t <= r) return lo + (max - lo) * t / r;
    if (t <= c) return max + (lo - max) * (t - r) / (c - r);
    if (f == 0) return from;
    if (t >= T) return end;
    return from + (end - from) * (t - c) / (T - c);
}

static double ref_onecycle_pct_momentum(double t, double T, double f, double p, double mlo, double mhi) {
    const double r = p * T, c = (1 - f) * T;
    if (t < 0) t = 0;
    if (t <= r) return mhi + (mlo - mhi) * t / r;
    if (t <= c) return mlo + (mhi - mlo) * (t - r) / (c - r);
    if (c > r) return mhi;
    if (f == 0) return mlo;
    return t >= T ? mhi : mlo + (mhi - mlo) * (t - c) / (T - c);
}

/* Three phases: a rise over 25% of 1000 steps, a fall back to lo until 80%,
 * the annihilation to lo/50 at 1000. */
Test(schedule, onecycle_pct_start_and_final_div_factor_set_the_phases) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 0.1f);
    c.total_steps = 1000;
    c.final_fraction = 0.2f;
    c.pct_start = 0.25f;
    c.final_div_factor = 50.0f;
    nb_schedule *s = make(&c);
    const double max = (double)0.1f, lo = max / 10, end = lo / 50, r = (double)0.25f * 1000,
                 cend = (1 - (double)0.2f) * 1000;
    /* the phase boundaries and points inside each phase */
    assert_rate(nb_schedule_lr(s, 0), lo);
    assert_rate(nb_schedule_lr(s, r / 2), (lo + max) / 2);
    assert_rate(nb_schedule_lr(s, r), max);
    assert_rate(nb_schedule_lr(s, (r + cend) / 2), (lo + max) / 2);
    assert_rate(nb_schedule_lr(s, cend), lo);
    assert_rate(nb_schedule_lr(s, (cend + 1000) / 2), (lo + end) / 2);
    assert_rate(nb_schedule_lr(s, 1000), end);
    assert_rate(nb_schedule_lr(s, 1e6), end);
    assert_rate(nb_schedule_momentum(s, r, 0), (double)0.85f);
    assert_rate(nb_schedule_momentum(s, cend, 0), (double)0.95f);
    for (double t = 0; t <= 1100; t += 0.5) {
        assert_rate(nb_schedule_lr(s, t), ref_onecycle_pct(t, 1000, max, 10, (double)0.2f, (double)0.25f, 50));
        assert_rate(nb_schedule_momentum(s, t, 0),
                    ref_onecycle_pct_momentum(t, 1000, (double)0.2f, (double)0.25f, (double)0.85f, (double)0.95f));
    }
    nb_schedule_free(s);
}

/* PyTorch's two phases (pct_start = 1 - final_fraction): up to max over
 * 30%, then straight down from max to lo/1e4 at T; momentum down over the
 * rise, back up over the descent. */
Test(schedule, onecycle_with_pct_start_at_the_cycle_end_has_pytorchs_two_phases) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 0.01f);
    c.total_steps = 200;
    c.div_factor = 25.0f;
    c.pct_start = 0.3f;
    c.final_fraction = 0.7f;
    c.final_div_factor = 1e4f;
    nb_schedule *s = make(&c);
    const double max = (double)0.01f, lo = max / 25, end = lo / 1e4, r = (double)0.3f * 200;
    assert_rate(nb_schedule_lr(s, 0), lo);
    assert_rate(nb_schedule_lr(s, r), max);
    assert_rate(nb_schedule_lr(s, (r + 200) / 2), (max + end) / 2);
    assert_rate(nb_schedule_lr(s, 200), end);
    assert_rate(nb_schedule_momentum(s, r, 0), (double)0.85f);
    assert_rate(nb_schedule_momentum(s, (r + 200) / 2, 0), ((double)0.85f + (double)0.95f) / 2);
    assert_rate(nb_schedule_momentum(s, 200, 0), (double)0.95f);
    for (double t = 0; t <= 220; t += 0.25) {
        assert_rate(nb_schedule_lr(s, t),
                    ref_onecycle_pct(t, 200, max, 25, (double)0.7f, (double)0.3f, (double)1e4f));
        assert_rate(nb_schedule_momentum(s, t, 0),
                    ref_onecycle_pct_momentum(t, 200, (double)0.7f, (double)0.3f, (double)0.85f, (double)0.95f));
    }
    nb_schedule_free(s);

    /* 0.1f + 0.9f is not 1 in double: still two phases */
    c.pct_start = 0.1f;
    c.final_fraction = 0.9f;
    s = make(&c);
    assert_rate(nb_schedule_lr(s, 20), max);
    assert_rate(nb_schedule_lr(s, 110), (max + end) / 2);
    assert_rate(nb_schedule_momentum(s, 110, 0), ((double)0.85f + (double)0.95f) / 2);
    nb_schedule_free(s);
}

/* 0 in both fields is today's schedule, and so are the values they stand
 * for: pct_start (1-f)/2 and final_div_factor 1000. */
Test(schedule, onecycle_pct_start_and_final_div_factor_zero_keep_the_defaults) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 0.1f);
    cr_assert_eq(c.pct_start, 0.0f);
    cr_assert_eq(c.final_div_factor, 0.0f);
    c.total_steps = 1000;
    nb_schedule *s = make(&c), *s2;
    c.pct_start = 0.45f;
    c.final_div_factor = 1000.0f;
    s2 = make(&c);
    for (int t = 0; t <= 1100; t++) {
        assert_rate(nb_schedule_lr(s, t), ref_onecycle_lr(t, 1000, (double)0.1f, 10, (double)0.1f));
        assert_rate(nb_schedule_lr(s2, t), ref_onecycle_lr(t, 1000, (double)0.1f, 10, (double)0.1f));
        assert_rate(nb_schedule_momentum(s2, t, 0),
                    ref_onecycle_momentum(t, 1000, (double)0.1f, (double)0.85f, (double)0.95f));
    }
    nb_schedule_free(s);
    nb_schedule_free(s2);
}

Test(schedule, momentum_of_other_kinds_is_the_base) {
    for (int k = NB_SCHEDULE_CONSTANT; k < NB_SCHEDULE_ONECYCLE; k++) {
        nb_schedule_config c = nb_schedule_defaults((nb_schedule_kind)k, 0.1f);
        c.n_boundaries = 1;
        c.boundaries[0] = 1;
        c.values[0] = c.values[1] = 0.1f;
        nb_schedule *s = make(&c);
        cr_assert_eq(nb_schedule_momentum(s, 0, 0.9f), 0.9f, "%s", nb_schedule_name(k));
        cr_assert_eq(nb_schedule_momentum(s, 123, 0.37f), 0.37f, "%s", nb_schedule_name(k));
        nb_schedule_free(s);
    }
}

Test(schedule, performance_reduces_after_patience_plateaus_down_to_min_lr) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_PERFORMANCE, 1.0f);
    c.factor = 0.5f;
    c.patience = 2;
    c.min_delta = 0.1f;
    c.min_lr = 0.2f;
    nb_schedule *s = make(&c);
    /* Worked by hand from Keras's rule: improve when value < best - min_delta;
     * otherwise wait += 1 and at wait >= patience reduce (if lr > min_lr) and
     * set wait = 0. */
    struct { double value; bool reduced; double lr; } run[] = {
        {10.0, false, 1.0},   /* first value always improves: best 10 */
        {9.95, false, 1.0},   /* not below 9.9: wait 1 */
        {9.0, false, 1.0},    /* improves: best 9, wait 0 */
        {9.0, false, 1.0},    /* wait 1 */
        {8.95, true, 0.5},    /* 8.95 > 8.9: wait 2 -> halve, wait 0 */
        {9.5, false, 0.5},    /* wait 1 */
        {8.0, false, 0.5},    /* improves: best 8 */
        {8.0, false, 0.5},    /* wait 1 */
        {8.0, true, 0.25},    /* wait 2 -> halve */
        {NAN, false, 0.25},   /* NaN never improves: wait 1 */
        {7.95, true, 0.2},    /* wait 2 -> max(0.125, 0.2) = the floor */
        {8.0, false, 0.2},    /* wait 1 */
        {8.0, false, 0.2},    /* wait 2 but at the floor: no reduction */
        {8.0, false, 0.2},    /* and still none */
        {1.0, false, 0.2},    /* a big improvement does not raise the rate */
    };
    for (size_t i = 0; i < sizeof run / sizeof run[0]; i++) {
        bool reduced = nb_schedule_observe(s, run[i].value);
        cr_assert_eq(reduced, run[i].reduced, "observation %zu (%g): reduced %d", i,
                     run[i].value, reduced);
        assert_rate(nb_schedule_lr(s, 0), (double)(float)run[i].lr);
        /* The rate does not depend on t. */
        cr_assert_eq(nb_schedule_lr(s, 1e6), nb_schedule_lr(s, 0));
    }
    nb_schedule_free(s);
}

Test(schedule, performance_with_defaults_waits_five_epochs) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_PERFORMANCE, 0.01f);
    nb_schedule *s = make(&c);
    double lr = (double)0.01f;
    cr_assert_not(nb_schedule_observe(s, 1.0));
    /* Improvements on the best smaller than min_delta 1e-4 do not count. */
    for (int round = 0; round < 4; round++) {
        for (int i = 1; i <= 5; i++) {
            bool r = nb_schedule_observe(s, 1.0 - 5e-5);
            cr_assert_eq(r, i == 5, "round %d observation %d", round, i);
        }
        lr = (double)(float)(lr * (double)0.5f);
        assert_rate(nb_schedule_lr(s, 0), lr);
    }
    /* A real improvement restarts the count. */
    for (int i = 0; i < 4; i++) cr_assert_not(nb_schedule_observe(s, 2.0));
    cr_assert_not(nb_schedule_observe(s, 0.5));
    for (int i = 0; i < 4; i++) cr_assert_not(nb_schedule_observe(s, 0.5));
    cr_assert(nb_schedule_observe(s, 0.5));
    nb_schedule_free(s);
}

Test(schedule, performance_with_patience_zero_reduces_on_every_plateau) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_PERFORMANCE, 0.8f);
    c.patience = 0;
    c.factor = 0.25f;
    c.min_delta = 0;
    nb_schedule *s = make(&c);
    double lr = (double)0.8f;
    cr_assert_not(nb_schedule_observe(s, 3.0)); /* improves */
    cr_assert(nb_schedule_observe(s, 3.0));     /* equal is not better */
    lr *= 0.25;
    assert_rate(nb_schedule_lr(s, 0), lr);
    cr_assert_not(nb_schedule_observe(s, 2.9)); /* improves: no reduction */
    assert_rate(nb_schedule_lr(s, 0), lr);
    cr_assert(nb_schedule_observe(s, 4.0));
    lr *= 0.25;
    assert_rate(nb_schedule_lr(s, 0), lr);
    nb_schedule_free(s);
}

Test(schedule, observe_is_ignored_by_other_kinds) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_EXPONENTIAL, 0.1f);
    c.steps = 10;
    nb_schedule *s = make(&c);
    float before = nb_schedule_lr(s, 5);
    for (int i = 0; i < 20; i++) cr_assert_not(nb_schedule_observe(s, 1.0));
    cr_assert_eq(nb_schedule_lr(s, 5), before);
    nb_schedule_free(s);
}

Test(schedule, the_config_is_copied) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_POWER, 0.01f);
    nb_schedule *s = make(&c);
    c.lr0 = 5.0f;
    c.steps = -1.0f;
    assert_rate(nb_schedule_lr(s, 1), (double)0.01f / 2);
    nb_schedule_free(s);
}

Test(schedule, null_schedule_is_harmless) {
    nb_schedule_free(NULL);
    cr_assert_eq(nb_schedule_lr(NULL, 3), 0.0f);
    cr_assert_eq(nb_schedule_momentum(NULL, 3, 0.9f), 0.9f);
    cr_assert_not(nb_schedule_observe(NULL, 1.0));
    cr_assert_null(nb_schedule_new(NULL));
    cr_assert(strstr(nb_last_error(), "schedule: config is NULL"), "%s", nb_last_error());
}

/* A valid config of each kind, to break one field at a time. */
static nb_schedule_config valid(nb_schedule_kind kind) {
    nb_schedule_config c = nb_schedule_defaults(kind, 0.1f);
    c.n_boundaries = 2;
    c.boundaries[0] = 10, c.boundaries[1] = 20;
    c.values[0] = 0.1f, c.values[1] = 0.01f, c.values[2] = 0.001f;
    c.total_steps = 100;
    return c;
}

Test(schedule, every_bad_config_is_refused_with_its_message) {
    nb_schedule_config c;
#define BAD(KIND, SETUP, WANT)                                                              \
    do {                                                                                    \
        c = valid(KIND);                                                                    \
        nb_schedule *ok_ = nb_schedule_new(&c);                                              \
        cr_assert(ok_, "valid %s config refused: %s", nb_schedule_name(KIND), nb_last_error()); \
        nb_schedule_free(ok_);                                                              \
        SETUP;                                                                              \
        /* Leave a different message behind, so a stale one cannot pass. */                 \
        (void)nb_schedule_new(NULL);                                                        \
        nb_schedule *s_ = nb_schedule_new(&c);                                              \
        cr_assert_null(s_, "%s: accepted %s", nb_schedule_name(KIND), #SETUP);              \
        cr_assert(strstr(nb_last_error(), "schedule: ") && strstr(nb_last_error(), WANT),   \
                  "%s with %s: message \"%s\" lacks \"%s\"", nb_schedule_name(KIND), #SETUP, \
                  nb_last_error(), WANT);                                                   \
    } while (0)

    BAD(NB_SCHEDULE_CONSTANT, c.kind = (nb_schedule_kind)6, "kind 6 outside");
    BAD(NB_SCHEDULE_CONSTANT, c.kind = (nb_schedule_kind)-1, "kind -1 outside");
    BAD(NB_SCHEDULE_CONSTANT, c.lr0 = 0, "lr0 is 0");
    BAD(NB_SCHEDULE_CONSTANT, c.lr0 = -0.1f, "lr0");
    BAD(NB_SCHEDULE_CONSTANT, c.lr0 = NAN, "lr0 is nan");
    BAD(NB_SCHEDULE_CONSTANT, c.lr0 = INFINITY, "lr0 is inf");
    BAD(NB_SCHEDULE_POWER, c.lr0 = 0, "lr0");
    BAD(NB_SCHEDULE_POWER, c.steps = 0, "steps is 0");
    BAD(NB_SCHEDULE_POWER, c.steps = -3, "steps is -3");
    BAD(NB_SCHEDULE_POWER, c.steps = INFINITY, "steps is inf");
    BAD(NB_SCHEDULE_POWER, c.power = 0, "power is 0");
    BAD(NB_SCHEDULE_POWER, c.power = NAN, "power is nan");
    BAD(NB_SCHEDULE_EXPONENTIAL, c.lr0 = -1, "lr0 is -1");
    BAD(NB_SCHEDULE_EXPONENTIAL, c.steps = 0, "steps is 0");
    BAD(NB_SCHEDULE_EXPONENTIAL, c.steps = NAN, "steps is nan");
    BAD(NB_SCHEDULE_PIECEWISE, c.n_boundaries = 0, "n_boundaries is 0, must be in [1,16]");
    BAD(NB_SCHEDULE_PIECEWISE, c.n_boundaries = -2, "n_boundaries is -2");
    BAD(NB_SCHEDULE_PIECEWISE, c.n_boundaries = NB_SCHEDULE_MAX_PIECES + 1,
        "n_boundaries is 17");
    BAD(NB_SCHEDULE_PIECEWISE, c.boundaries[1] = 10, "boundaries not increasing");
    BAD(NB_SCHEDULE_PIECEWISE, c.boundaries[1] = 5, "boundaries[1] = 5");
    BAD(NB_SCHEDULE_PIECEWISE, c.boundaries[0] = NAN, "boundaries[0] is nan");
    BAD(NB_SCHEDULE_PIECEWISE, c.boundaries[1] = INFINITY, "boundaries[1] is inf");
    BAD(NB_SCHEDULE_PIECEWISE, c.values[0] = 0, "values[0] is 0");
    BAD(NB_SCHEDULE_PIECEWISE, c.values[2] = -0.5f, "values[2] is -0.5");
    BAD(NB_SCHEDULE_PIECEWISE, c.values[1] = NAN, "values[1] is nan");
    BAD(NB_SCHEDULE_PERFORMANCE, c.lr0 = 0, "lr0");
    BAD(NB_SCHEDULE_PERFORMANCE, c.factor = 0, "factor is 0, must be in (0,1)");
    BAD(NB_SCHEDULE_PERFORMANCE, c.factor = 1, "factor is 1");
    BAD(NB_SCHEDULE_PERFORMANCE, c.factor = 1.5f, "factor is 1.5");
    BAD(NB_SCHEDULE_PERFORMANCE, c.factor = NAN, "factor is nan");
    BAD(NB_SCHEDULE_PERFORMANCE, c.patience = -1, "patience is -1");
    BAD(NB_SCHEDULE_PERFORMANCE, c.min_lr = -0.25f, "min_lr is -0.25");
    BAD(NB_SCHEDULE_PERFORMANCE, c.min_lr = NAN, "min_lr is nan");
    BAD(NB_SCHEDULE_PERFORMANCE, c.min_delta = -1, "min_delta is -1");
    BAD(NB_SCHEDULE_ONECYCLE, c.total_steps = 0, "total_steps is 0, must be >= 1");
    BAD(NB_SCHEDULE_ONECYCLE, c.total_steps = -5, "total_steps is -5");
    BAD(NB_SCHEDULE_ONECYCLE, c.max_lr = 0, "max_lr is 0");
    BAD(NB_SCHEDULE_ONECYCLE, c.max_lr = -1, "max_lr is -1");
    BAD(NB_SCHEDULE_ONECYCLE, c.max_lr = INFINITY, "max_lr is inf");
    BAD(NB_SCHEDULE_ONECYCLE, c.div_factor = 0.5f, "div_factor is 0.5, must be finite and >= 1");
    BAD(NB_SCHEDULE_ONECYCLE, c.div_factor = NAN, "div_factor is nan");
    BAD(NB_SCHEDULE_ONECYCLE, c.final_fraction = 1, "final_fraction is 1, must be in [0,1)");
    BAD(NB_SCHEDULE_ONECYCLE, c.final_fraction = -0.1f, "final_fraction is -0.1");
    BAD(NB_SCHEDULE_ONECYCLE, c.min_momentum = -0.1f, "min_momentum is -0.1");
    BAD(NB_SCHEDULE_ONECYCLE, c.max_momentum = 1, "max_momentum is 1");
    BAD(NB_SCHEDULE_ONECYCLE, c.pct_start = -0.1f, "pct_start is -0.1, must be 0");
    BAD(NB_SCHEDULE_ONECYCLE, c.pct_start = NAN, "pct_start is nan");
    BAD(NB_SCHEDULE_ONECYCLE, (c.final_fraction = 0.5f, c.pct_start = 0.6f), "pct_start is 0.6, must be 0 (the default: half the cycle) or in (0, 1 - final_fraction] = (0, 0.5]");
    BAD(NB_SCHEDULE_ONECYCLE, c.final_div_factor = 0.5f, "final_div_factor is 0.5, must be 0 (the default, 1000) or finite and >= 1");
    BAD(NB_SCHEDULE_ONECYCLE, c.final_div_factor = INFINITY, "final_div_factor is inf");
    BAD(NB_SCHEDULE_ONECYCLE, (c.min_momentum = 0.9f, c.max_momentum = 0.8f),
        "min_momentum 0.9 > max_momentum 0.8");
#undef BAD
}

Test(schedule, fields_a_kind_does_not_use_are_not_checked) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_CONSTANT, 0.1f);
    c.steps = -1, c.power = NAN, c.factor = 7, c.patience = -3, c.total_steps = 0;
    c.max_lr = -1, c.div_factor = 0, c.n_boundaries = 99;
    nb_schedule *s = make(&c);
    cr_assert_eq(nb_schedule_lr(s, 10), 0.1f);
    nb_schedule_free(s);
    /* 1cycle does not use lr0, piecewise neither. */
    c = valid(NB_SCHEDULE_ONECYCLE);
    c.lr0 = 0;
    s = make(&c);
    nb_schedule_free(s);
    c = valid(NB_SCHEDULE_PIECEWISE);
    c.lr0 = -1;
    s = make(&c);
    nb_schedule_free(s);
}

Test(schedule, performance_measures_improvement_against_the_best_not_the_last_value) {
    nb_schedule_config c = nb_schedule_defaults(NB_SCHEDULE_PERFORMANCE, 0.1f);
    c.min_delta = 0.1f;
    c.patience = 3;
    nb_schedule *s = make(&c);
    cr_assert_not(nb_schedule_observe(s, 1.0));  /* best 1.0 */
    cr_assert_not(nb_schedule_observe(s, 0.96)); /* wait 1 */
    cr_assert_not(nb_schedule_observe(s, 0.92)); /* wait 2 */
    cr_assert_not(nb_schedule_observe(s, 0.88)); /* 0.88 < 1.0 - 0.1: best 0.88, wait 0 */
    cr_assert_not(nb_schedule_observe(s, 0.85)); /* wait 1 */
    cr_assert_not(nb_schedule_observe(s, 0.82)); /* wait 2 */
    cr_assert(nb_schedule_observe(s, 0.79));     /* 0.79 > 0.78: wait 3 -> reduce */
    assert_rate(nb_schedule_lr(s, 0), (double)0.1f * 0.5);
    nb_schedule_free(s);
}
