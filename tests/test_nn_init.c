/* tests/test_nn_init.c — weight initializers against Keras's definitions.
 *
 * The expected deviations are written from Keras's docstrings (glorot_uniform:
 * limit sqrt(6 / (in + out)), he_normal: stddev sqrt(2 / in), ...), not from
 * the library. Sample statistics over 500,000 draws: the variance's relative
 * standard error is at most sqrt(2 / n) = 0.2%, so a 3% band is ~15 standard
 * errors wide yet catches the mistakes that matter (a missing 0.8796 factor
 * is -23%, no truncation +29%, fan_in for fan_avg -25% here). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/init.h"
#include "nabla/tensor.h"

#define ROWS 1000
#define COLS 500
#define VAR_TOL 0.03

typedef struct stats {
    double mean, var, max_abs;
    size_t n;
} stats;

static stats stats_of(const nb_tensor *t) {
    stats s = {0, 0, 0, t->size};
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < t->size; i++) {
        double v = t->data[i];
        sum += v;
        if (fabs(v) > s.max_abs) s.max_abs = fabs(v);
    }
    s.mean = sum / (double)t->size;
    for (size_t i = 0; i < t->size; i++) {
        double d = t->data[i] - s.mean;
        sum2 += d * d;
    }
    s.var = sum2 / (double)(t->size - 1);
    return s;
}

/* fraction of elements with |x| < c */
static double frac_below(const nb_tensor *t, double c) {
    size_t k = 0;
    for (size_t i = 0; i < t->size; i++)
        if (fabs((double)t->data[i]) < c) k++;
    return (double)k / (double)t->size;
}

static nb_tensor *big(void) {
    nb_tensor *t = nb_tensor_new(2, (int[]){ROWS, COLS});
    cr_assert(t, "%s", nb_last_error());
    return t;
}

/* Mean ~0 (within 8 standard errors of the mean) and variance within VAR_TOL. */
static void check_moments(const stats *s, double want_var, const char *what) {
    double se_mean = sqrt(want_var / (double)s->n);
    cr_assert(fabs(s->mean) < 8 * se_mean, "%s: mean %.3g, want 0 (+- %.3g)", what, s->mean,
              8 * se_mean);
    cr_assert(fabs(s->var / want_var - 1.0) < VAR_TOL, "%s: variance %.6g, want %.6g (+-%g%%)",
              what, s->var, want_var, 100 * VAR_TOL);
}

/* A named initializer on a [ROWS, COLS] Dense kernel (fan_in ROWS, fan_out
 * COLS). uniform: limit is given; otherwise stddev (after truncation). */
static void check_named(const char *name, bool uniform, double want) {
    nb_init init;
    cr_assert(nb_init_parse(name, &init), "%s: %s", name, nb_last_error());
    nb_tensor *t = big();
    nb_rng rng;
    nb_rng_seed(&rng, 42, 7);
    cr_assert_eq(nb_init_fill(t, &init, ROWS, COLS, &rng), NB_OK, "%s", nb_last_error());
    stats s = stats_of(t);
    if (uniform) {
        double limit = want;
        check_moments(&s, limit * limit / 3.0, name);
        for (size_t i = 0; i < t->size; i++)
            cr_assert(t->data[i] >= -(float)limit && t->data[i] <= (float)limit,
                      "%s: element %zu = %g outside +-%g", name, i, t->data[i], limit);
        /* the whole range is used, not a narrower one */
        cr_assert(s.max_abs > 0.999 * limit, "%s: max |x| %g, limit %g", name, s.max_abs, limit);
    } else {
        double stddev = want, raw = stddev / 0.87962566103423978;
        check_moments(&s, stddev * stddev, name);
        cr_assert(s.max_abs <= 2.0 * raw * (1 + 1e-6), "%s: max |x| %g beyond 2*%g", name,
                  s.max_abs, raw);
        cr_assert(s.max_abs > 1.99 * raw, "%s: max |x| %g, cut should be at 2*%g", name,
                  s.max_abs, raw);
    }
    nb_tensor_free(t);
}

Test(init, glorot_uniform_limit_is_sqrt_6_over_fan_in_plus_fan_out) {
    check_named("glorot_uniform", true, sqrt(6.0 / (ROWS + COLS)));
}

Test(init, glorot_normal_stddev_is_sqrt_2_over_fan_in_plus_fan_out) {
    check_named("glorot_normal", false, sqrt(2.0 / (ROWS + COLS)));
}

Test(init, he_uniform_limit_is_sqrt_6_over_fan_in) {
    check_named("he_uniform", true, sqrt(6.0 / ROWS));
}

Test(init, he_normal_stddev_is_sqrt_2_over_fan_in) {
    check_named("he_normal", false, sqrt(2.0 / ROWS));
}

Test(init, lecun_uniform_limit_is_sqrt_3_over_fan_in) {
    check_named("lecun_uniform", true, sqrt(3.0 / ROWS));
}

Test(init, lecun_normal_stddev_is_sqrt_1_over_fan_in) {
    check_named("lecun_normal", false, sqrt(1.0 / ROWS));
}

Test(init, parse_gives_keras_settings) {
    static const struct {
        const char *name;
        double scale;
        nb_fan_mode mode;
        nb_distribution dist;
    } want[] = {
        {"glorot_uniform", 1, NB_FAN_AVG, NB_DIST_UNIFORM},
        {"glorot_normal", 1, NB_FAN_AVG, NB_DIST_TRUNCATED_NORMAL},
        {"he_uniform", 2, NB_FAN_IN, NB_DIST_UNIFORM},
        {"he_normal", 2, NB_FAN_IN, NB_DIST_TRUNCATED_NORMAL},
        {"lecun_uniform", 1, NB_FAN_IN, NB_DIST_UNIFORM},
        {"lecun_normal", 1, NB_FAN_IN, NB_DIST_TRUNCATED_NORMAL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        nb_init in;
        cr_assert(nb_init_parse(want[i].name, &in), "%s", nb_last_error());
        cr_assert_str_eq(in.name, want[i].name);
        cr_assert_eq(in.kind, NB_INIT_VARIANCE_SCALING, "%s", want[i].name);
        cr_assert_eq(in.scale, want[i].scale, "%s", want[i].name);
        cr_assert_eq(in.mode, want[i].mode, "%s", want[i].name);
        cr_assert_eq(in.distribution, want[i].dist, "%s", want[i].name);
    }
    nb_init z, o;
    cr_assert(nb_init_parse("zeros", &z));
    cr_assert(nb_init_parse("ones", &o));
    cr_assert_str_eq(z.name, "zeros");
    cr_assert_str_eq(o.name, "ones");
    cr_assert_eq(z.kind, NB_INIT_CONSTANT);
    cr_assert_eq(o.kind, NB_INIT_CONSTANT);
    cr_assert_eq(z.value, 0.0f);
    cr_assert_eq(o.value, 1.0f);
}

Test(init, variance_scaling_constructor_keeps_its_arguments) {
    nb_init v = nb_init_variance_scaling(0.25, NB_FAN_OUT, NB_DIST_NORMAL);
    cr_assert_str_eq(v.name, "variance_scaling");
    cr_assert_eq(v.kind, NB_INIT_VARIANCE_SCALING);
    cr_assert_eq(v.scale, 0.25);
    cr_assert_eq(v.mode, NB_FAN_OUT);
    cr_assert_eq(v.distribution, NB_DIST_NORMAL);
}

/* The truncated normal is a normal cut at +-2 raw deviations, not another
 * shape of the same variance: P(|z| < 1 | |z| <= 2) = erf(1/sqrt2) / erf(sqrt2). */
Test(init, truncated_normal_has_truncated_normal_shape) {
    const double scale = 0.5;
    const int fan_in = 300, fan_out = 40;
    nb_init init = nb_init_variance_scaling(scale, NB_FAN_IN, NB_DIST_TRUNCATED_NORMAL);
    nb_tensor *t = big();
    nb_rng rng;
    nb_rng_seed(&rng, 1, 0);
    cr_assert_eq(nb_init_fill(t, &init, fan_in, fan_out, &rng), NB_OK, "%s", nb_last_error());
    double raw = sqrt(scale / fan_in) / 0.87962566103423978;
    double want = erf(1.0 / sqrt(2.0)) / erf(sqrt(2.0)); /* 0.71523 */
    double got = frac_below(t, raw);
    cr_assert(fabs(got - want) < 0.004, "P(|x| < raw stddev) = %.5f, want %.5f", got, want);
    stats s = stats_of(t);
    check_moments(&s, scale / fan_in, "truncated_normal");
    cr_assert(s.max_abs <= 2.0 * raw * (1 + 1e-6));
    nb_tensor_free(t);
}

/* The untruncated normal keeps its tails: P(|z| > 2) = erfc(sqrt2) = 4.55%. */
Test(init, untruncated_normal_keeps_its_tails) {
    const double scale = 3.0;
    const int fan_in = 64, fan_out = 128;
    nb_init init = nb_init_variance_scaling(scale, NB_FAN_OUT, NB_DIST_NORMAL);
    nb_tensor *t = big();
    nb_rng rng;
    nb_rng_seed(&rng, 2, 0);
    cr_assert_eq(nb_init_fill(t, &init, fan_in, fan_out, &rng), NB_OK, "%s", nb_last_error());
    double sd = sqrt(scale / fan_out);
    stats s = stats_of(t);
    check_moments(&s, sd * sd, "untruncated_normal");
    double tail = 1.0 - frac_below(t, 2.0 * sd);
    cr_assert(fabs(tail - erfc(sqrt(2.0))) < 0.002, "P(|x| > 2 sd) = %.5f, want %.5f", tail,
              erfc(sqrt(2.0)));
    cr_assert(s.max_abs > 4.0 * sd, "max |x| %g: no far tail at %g", s.max_abs, sd);
    nb_tensor_free(t);
}

/* Uniform on [-limit, limit]: half the values within limit / 2. */
Test(init, uniform_is_flat_on_minus_limit_to_limit) {
    const double scale = 1.5;
    const int fan_in = 30, fan_out = 70;
    nb_init init = nb_init_variance_scaling(scale, NB_FAN_AVG, NB_DIST_UNIFORM);
    nb_tensor *t = big();
    nb_rng rng;
    nb_rng_seed(&rng, 3, 0);
    cr_assert_eq(nb_init_fill(t, &init, fan_in, fan_out, &rng), NB_OK, "%s", nb_last_error());
    double limit = sqrt(3.0 * scale / ((fan_in + fan_out) / 2.0));
    stats s = stats_of(t);
    check_moments(&s, limit * limit / 3.0, "uniform");
    cr_assert(s.max_abs <= limit * (1 + 1e-6));
    double half = frac_below(t, limit / 2);
    cr_assert(fabs(half - 0.5) < 0.004, "P(|x| < limit/2) = %.5f, want 0.5", half);
    nb_tensor_free(t);
}

Test(init, fan_modes_change_the_variance) {
    const double scale = 2.0;
    const int fan_in = 200, fan_out = 800;
    const nb_fan_mode modes[] = {NB_FAN_IN, NB_FAN_OUT, NB_FAN_AVG};
    const double fans[] = {200, 800, 500};
    const nb_distribution dists[] = {NB_DIST_TRUNCATED_NORMAL, NB_DIST_NORMAL, NB_DIST_UNIFORM};
    nb_tensor *t = big();
    for (int d = 0; d < 3; d++) {
        double var[3];
        for (int m = 0; m < 3; m++) {
            nb_init init = nb_init_variance_scaling(scale, modes[m], dists[d]);
            nb_rng rng;
            nb_rng_seed(&rng, 100 + d, (uint64_t)m);
            cr_assert_eq(nb_init_fill(t, &init, fan_in, fan_out, &rng), NB_OK, "%s",
                         nb_last_error());
            stats s = stats_of(t);
            char what[64];
            snprintf(what, sizeof what, "dist %d mode %d", d, m);
            check_moments(&s, scale / fans[m], what);
            var[m] = s.var;
        }
        /* fan_in 200 vs fan_out 800: four times the variance */
        cr_assert(fabs(var[0] / var[1] / 4.0 - 1) < 2 * VAR_TOL, "dist %d: in/out %g", d,
                  var[0] / var[1]);
    }
    nb_tensor_free(t);
}

Test(init, same_seed_gives_identical_fills) {
    nb_init init;
    cr_assert(nb_init_parse("he_normal", &init));
    int dims[2] = {37, 53};
    nb_tensor *a = nb_tensor_new(2, dims), *b = nb_tensor_new(2, dims);
    nb_rng ra, rb;
    nb_rng_seed(&ra, 99, 5);
    nb_rng_seed(&rb, 99, 5);
    cr_assert_eq(nb_init_fill(a, &init, 37, 53, &ra), NB_OK);
    cr_assert_eq(nb_init_fill(b, &init, 37, 53, &rb), NB_OK);
    cr_assert(memcmp(a->data, b->data, a->size * sizeof(float)) == 0);
    /* the stream advances: the next fill from it differs */
    cr_assert_eq(nb_init_fill(b, &init, 37, 53, &rb), NB_OK);
    cr_assert(memcmp(a->data, b->data, a->size * sizeof(float)) != 0);
    /* another seed differs */
    nb_rng_seed(&rb, 100, 5);
    cr_assert_eq(nb_init_fill(b, &init, 37, 53, &rb), NB_OK);
    cr_assert(memcmp(a->data, b->data, a->size * sizeof(float)) != 0);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

Test(init, constants_fill_every_element_without_fans_or_rng) {
    nb_init z, o;
    cr_assert(nb_init_parse("zeros", &z));
    cr_assert(nb_init_parse("ones", &o));
    nb_tensor *t = nb_tensor_new(3, (int[]){3, 4, 5});
    cr_assert_eq(nb_init_fill(t, &o, 0, 0, NULL), NB_OK, "%s", nb_last_error());
    for (size_t i = 0; i < t->size; i++) cr_assert_eq(t->data[i], 1.0f, "element %zu", i);
    cr_assert_eq(nb_init_fill(t, &z, 3, 4, NULL), NB_OK);
    for (size_t i = 0; i < t->size; i++) cr_assert_eq(t->data[i], 0.0f, "element %zu", i);
    nb_init c = {.name = "constant", .kind = NB_INIT_CONSTANT, .value = -0.25f};
    nb_tensor *s = nb_tensor_new(0, NULL);
    cr_assert(s, "%s", nb_last_error());
    cr_assert_eq(nb_init_fill(s, &c, 1, 1, NULL), NB_OK);
    cr_assert_eq(s->data[0], -0.25f);
    nb_tensor_free(t);
    nb_tensor_free(s);
}

Test(init, stddev_is_sqrt_scale_over_fan) {
    static const struct {
        const char *name;
        double scale;
        int mode; /* 0 in, 1 out, 2 avg */
    } named[] = {
        {"glorot_uniform", 1, 2}, {"glorot_normal", 1, 2}, {"he_uniform", 2, 0},
        {"he_normal", 2, 0},      {"lecun_uniform", 1, 0}, {"lecun_normal", 1, 0},
    };
    const int fin = 784, fout = 10;
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        nb_init init;
        cr_assert(nb_init_parse(named[i].name, &init));
        double fan = named[i].mode == 0 ? fin : named[i].mode == 1 ? fout : (fin + fout) / 2.0;
        double want = sqrt(named[i].scale / fan);
        double got = nb_init_stddev(&init, fin, fout);
        cr_assert(fabs(got - want) <= 1e-15 * want, "%s: %.17g, want %.17g", named[i].name, got,
                  want);
    }
    nb_init v = nb_init_variance_scaling(0.1, NB_FAN_OUT, NB_DIST_NORMAL);
    cr_assert(fabs(nb_init_stddev(&v, 3, 7) - sqrt(0.1 / 7)) <= 1e-15);
    v.mode = NB_FAN_AVG;
    cr_assert(fabs(nb_init_stddev(&v, 3, 8) - sqrt(0.1 / 5.5)) <= 1e-15);
    nb_init z;
    cr_assert(nb_init_parse("zeros", &z));
    cr_assert_eq(nb_init_stddev(&z, 3, 8), 0.0);
}

Test(init, parse_errors_have_messages) {
    nb_init out = nb_init_variance_scaling(7.0, NB_FAN_OUT, NB_DIST_NORMAL);
    cr_assert_not(nb_init_parse("glorot", &out));
    cr_assert(strstr(nb_last_error(), "unknown initializer 'glorot'"), "%s", nb_last_error());
    cr_assert_eq(out.scale, 7.0, "out changed on failure");
    cr_assert_not(nb_init_parse("He_Normal", &out));
    cr_assert(strstr(nb_last_error(), "unknown initializer 'He_Normal'"), "%s", nb_last_error());
    cr_assert_not(nb_init_parse(NULL, &out));
    cr_assert(strstr(nb_last_error(), "name is NULL"), "%s", nb_last_error());
    cr_assert_not(nb_init_parse("he_normal", NULL));
    cr_assert(strstr(nb_last_error(), "output for initializer 'he_normal' is NULL"), "%s",
              nb_last_error());
}

static bool all_equal(const nb_tensor *t, float v) {
    for (size_t i = 0; i < t->size; i++)
        if (t->data[i] != v) return false;
    return true;
}

Test(init, fill_errors_have_messages_and_leave_tensor_alone) {
    nb_tensor *t = nb_tensor_new(2, (int[]){4, 6});
    for (size_t i = 0; i < t->size; i++) t->data[i] = 9.0f;
    nb_init he;
    cr_assert(nb_init_parse("he_normal", &he));
    nb_rng rng;
    nb_rng_seed(&rng, 1, 1);

    cr_assert_eq(nb_init_fill(NULL, &he, 4, 6, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "init: tensor is NULL"), "%s", nb_last_error());

    nb_tensor_set_name(t, "dense/kernel");
    cr_assert_eq(nb_init_fill(t, NULL, 4, 6, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "initializer for tensor 'dense/kernel' is NULL"), "%s",
              nb_last_error());

    cr_assert_eq(nb_init_fill(t, &he, 4, 6, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "random stream for tensor 'dense/kernel' is NULL"), "%s",
              nb_last_error());

    cr_assert_eq(nb_init_fill(t, &he, 0, 6, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "fan_in 0, fan_out 6: fans must be >= 1"), "%s",
              nb_last_error());
    cr_assert_eq(nb_init_fill(t, &he, 4, -2, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "fan_in 4, fan_out -2: fans must be >= 1"), "%s",
              nb_last_error());

    nb_init bad = nb_init_variance_scaling(0.0, NB_FAN_IN, NB_DIST_UNIFORM);
    cr_assert_eq(nb_init_fill(t, &bad, 4, 6, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "scale is 0, must be a finite number > 0"), "%s",
              nb_last_error());
    bad.scale = -1.5;
    cr_assert_eq(nb_init_fill(t, &bad, 4, 6, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "scale is -1.5"), "%s", nb_last_error());
    bad.scale = NAN;
    cr_assert_eq(nb_init_fill(t, &bad, 4, 6, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "scale is nan"), "%s", nb_last_error());
    bad.scale = INFINITY;
    cr_assert_eq(nb_init_fill(t, &bad, 4, 6, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "scale is inf"), "%s", nb_last_error());

    bad = nb_init_variance_scaling(1.0, (nb_fan_mode)17, NB_DIST_UNIFORM);
    cr_assert_eq(nb_init_fill(t, &bad, 4, 6, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "unknown fan mode 17"), "%s", nb_last_error());
    bad = nb_init_variance_scaling(1.0, NB_FAN_IN, (nb_distribution)9);
    cr_assert_eq(nb_init_fill(t, &bad, 4, 6, &rng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "unknown distribution 9"), "%s", nb_last_error());

    cr_assert(all_equal(t, 9.0f), "a failed fill changed the tensor");
    nb_tensor_free(t);
}

Test(init, stddev_errors_have_messages) {
    cr_assert_eq(nb_init_stddev(NULL, 3, 4), -1.0);
    cr_assert(strstr(nb_last_error(), "init_stddev: initializer is NULL"), "%s", nb_last_error());
    nb_init g;
    cr_assert(nb_init_parse("glorot_uniform", &g));
    cr_assert_eq(nb_init_stddev(&g, 3, 0), -1.0);
    cr_assert(strstr(nb_last_error(), "init_stddev: fan_in 3, fan_out 0: fans must be >= 1"), "%s",
              nb_last_error());
    g.scale = -2;
    cr_assert_eq(nb_init_stddev(&g, 3, 4), -1.0);
    cr_assert(strstr(nb_last_error(), "init_stddev: glorot_uniform scale is -2"), "%s",
              nb_last_error());
}

Test(init, variance_scaling_by_name_gives_the_stated_variance) {
    nb_init init;
    cr_assert(nb_init_parse("variance_scaling(2,fan_avg,uniform)", &init), "%s", nb_last_error());
    cr_assert_eq(init.mode, NB_FAN_AVG);
    cr_assert_eq(init.distribution, NB_DIST_UNIFORM);
    cr_assert_float_eq(init.scale, 2.0, 1e-12);
    nb_tensor *t = nb_tensor_new(2, (int[]){400, 600});
    nb_rng r;
    nb_rng_seed(&r, 3, 0);
    cr_assert_eq(nb_init_fill(t, &init, 400, 600, &r), NB_OK);
    double sum = 0, sq = 0, limit = sqrt(3.0 * 2.0 / 500.0);
    for (size_t i = 0; i < t->size; i++) {
        sum += t->data[i], sq += (double)t->data[i] * t->data[i];
        cr_assert_leq(fabs(t->data[i]), limit * (1 + 1e-6));
    }
    double var = sq / t->size - (sum / t->size) * (sum / t->size);
    cr_assert(fabs(var / (2.0 / 500.0) - 1) < 0.03, "variance %g, expected %g", var, 2.0 / 500.0);
    nb_tensor_free(t);
    const char *bad[] = {"variance_scaling(2,fan_avg)", "variance_scaling(-1,fan_in,normal)",
                         "variance_scaling(1,fan_sum,normal)", "variance_scaling(1,fan_in,cauchy)",
                         "variance_scaling(1,fan_in,normal)x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert(!nb_init_parse(bad[i], &init), "%s was accepted", bad[i]);
        cr_assert(strstr(nb_last_error(), "variance_scaling"), "%s", nb_last_error());
    }
}

/* Keras's RandomNormal and RandomUniform: fixed distributions whatever the
 * fans, with their defaults when named alone. */
Test(nn_init, random_normal_and_random_uniform_draw_their_distributions) {
    nb_init in;
    cr_assert(nb_init_parse("random_normal(0.5,2)", &in), "%s", nb_last_error());
    nb_tensor *t = nb_tensor_new(1, (int[]){20000});
    nb_rng r;
    nb_rng_seed(&r, 1, 0);
    cr_assert_eq(nb_init_fill(t, &in, 3, 7, &r), NB_OK, "%s", nb_last_error());
    double s = 0, q = 0;
    for (size_t i = 0; i < t->size; i++) s += t->data[i], q += (double)t->data[i] * t->data[i];
    const double mean = s / t->size, sd = sqrt(q / t->size - mean * mean);
    cr_assert(fabs(mean - 0.5) < 0.05 && fabs(sd - 2) < 0.05, "mean %g, sd %g", mean, sd);
    cr_assert_float_eq(nb_init_stddev(&in, 3, 7), 2, 1e-12);
    cr_assert(nb_init_parse("random_uniform(-1,3)", &in));
    cr_assert_eq(nb_init_fill(t, &in, 1, 1, &r), NB_OK);
    float lo = 10, hi = -10;
    for (size_t i = 0; i < t->size; i++) lo = fminf(lo, t->data[i]), hi = fmaxf(hi, t->data[i]);
    cr_assert(lo >= -1 && lo < -0.99f && hi < 3 && hi > 2.99f, "[%g, %g]", lo, hi);
    cr_assert_float_eq(nb_init_stddev(&in, 1, 1), 4 / sqrt(12.0), 1e-12);
    cr_assert(nb_init_parse("random_normal", &in));
    cr_assert(in.mean == 0 && in.stddev == 0.05);
    const char *bad[] = {"random_normal(0,-1)", "random_uniform(2,1)", "random_normal(0,1", "random_normalx",
                         "random_uniform(0,inf)", "random_normal(0,1)x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_not(nb_init_parse(bad[i], &in), "%s parsed", bad[i]);
        cr_assert(strstr(nb_last_error(), bad[i]) || strstr(nb_last_error(), "unknown initializer"), "%s",
                  nb_last_error());
    }
    nb_tensor_free(t);
}
