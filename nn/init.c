/* nn/init.c — weight initializers, following Keras 3's
 * keras/src/initializers/random_initializers.py (VarianceScaling and the
 * named subclasses) and constant_initializers.py (Zeros, Ones). */
#define _GNU_SOURCE /* strtod_l */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/init.h"

/* The standard deviation of a standard normal truncated to [-2, 2]. Keras
 * divides by it so the variance after truncation is still scale / fan. */
#define NB_TRUNC_STDDEV 0.87962566103423978

/* The named initializers, as Keras defines them. */
static const struct {
    const char *name;
    double scale;
    nb_fan_mode mode;
    nb_distribution dist;
} named_vs[] = {
    {"glorot_uniform", 1.0, NB_FAN_AVG, NB_DIST_UNIFORM},
    {"glorot_normal", 1.0, NB_FAN_AVG, NB_DIST_TRUNCATED_NORMAL},
    {"he_uniform", 2.0, NB_FAN_IN, NB_DIST_UNIFORM},
    {"he_normal", 2.0, NB_FAN_IN, NB_DIST_TRUNCATED_NORMAL},
    {"lecun_uniform", 1.0, NB_FAN_IN, NB_DIST_UNIFORM},
    {"lecun_normal", 1.0, NB_FAN_IN, NB_DIST_TRUNCATED_NORMAL},
};

static nb_init constant(const char *name, float value) {
    nb_init c;
    memset(&c, 0, sizeof c);
    c.name = name;
    c.kind = NB_INIT_CONSTANT;
    c.value = value;
    return c;
}

nb_init nb_init_variance_scaling(double scale, nb_fan_mode mode, nb_distribution dist) {
    nb_init v;
    memset(&v, 0, sizeof v);
    v.name = "variance_scaling";
    v.kind = NB_INIT_VARIANCE_SCALING;
    v.scale = scale;
    v.mode = mode;
    v.distribution = dist;
    return v;
}

/* "variance_scaling(SCALE,MODE,DISTRIBUTION)", e.g.
 * "variance_scaling(2,fan_avg,uniform)": the general initializer by name,
 * so that a layer's spec (a string) can hold any of them. */
static bool parse_variance_scaling(const char *name, nb_init *out) {
    static const char *const modes[] = {"fan_in", "fan_out", "fan_avg"};
    static const char *const dists[] = {"truncated_normal", "normal", "uniform"};
    char mode[16], dist[24], close;
    int used = 0;
    /* the scale in the C locale, whatever the program's: specs are data */
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    char *end = NULL;
    double scale = c_locale ? strtod_l(name + 17, &end, c_locale) : 0;
    if (c_locale) freelocale(c_locale);
    if (!end || end == name + 17 || sscanf(end, ",%15[a-z_],%23[a-z_]%c%n", mode, dist, &close, &used) != 3 ||
        close != ')' || end[used] != '\0') {
        nb__set_last_error("init: '%s' is not variance_scaling(SCALE,MODE,DISTRIBUTION)", name);
        return false;
    }
    int mi = -1, di = -1;
    for (int i = 0; i < 3; i++) {
        if (strcmp(mode, modes[i]) == 0) mi = i;
        if (strcmp(dist, dists[i]) == 0) di = i;
    }
    if (mi < 0 || di < 0 || !(scale > 0) || !isfinite(scale)) {
        nb__set_last_error("init: '%s': scale must be > 0, mode fan_in, fan_out or fan_avg, distribution "
                           "truncated_normal, normal or uniform",
                           name);
        return false;
    }
    static const nb_fan_mode fan[] = {NB_FAN_IN, NB_FAN_OUT, NB_FAN_AVG};
    static const nb_distribution dis[] = {NB_DIST_TRUNCATED_NORMAL, NB_DIST_NORMAL, NB_DIST_UNIFORM};
    *out = nb_init_variance_scaling(scale, fan[mi], dis[di]);
    return true;
}

/* "random_normal(MEAN,STDDEV)" or "random_uniform(MIN,MAX)" (prefix
 * given), or the bare name with Keras's defaults. */
static bool parse_random(const char *name, size_t prefix, bool normal, nb_init *out) {
    double a = normal ? 0.0 : -0.05, b = 0.05;
    int used = 0;
    if (name[prefix] && (sscanf(name + prefix, "(%lf,%lf)%n", &a, &b, &used) != 2 || name[prefix + (size_t)used] ||
                         !isfinite(a) || !isfinite(b) || (normal ? !(b > 0) : !(a < b)))) {
        nb__set_last_error("init: '%s' is not %s with finite numbers%s", name,
                           normal ? "random_normal(MEAN,STDDEV)" : "random_uniform(MIN,MAX)",
                           normal ? ", STDDEV > 0" : ", MIN < MAX");
        return false;
    }
    *out = (nb_init){.name = normal ? "random_normal" : "random_uniform", .kind = NB_INIT_RANDOM,
                     .distribution = normal ? NB_DIST_NORMAL : NB_DIST_UNIFORM};
    if (normal) out->mean = a, out->stddev = b;
    else out->minval = a, out->maxval = b;
    return true;
}

bool nb_init_parse(const char *name, nb_init *out) {
    if (!name) {
        nb__set_last_error("init: initializer name is NULL");
        return false;
    }
    if (!out) {
        nb__set_last_error("init: output for initializer '%s' is NULL", name);
        return false;
    }
    for (size_t i = 0; i < sizeof named_vs / sizeof named_vs[0]; i++) {
        if (strcmp(name, named_vs[i].name) == 0) {
            *out = nb_init_variance_scaling(named_vs[i].scale, named_vs[i].mode, named_vs[i].dist);
            out->name = named_vs[i].name;
            return true;
        }
    }
    if (strncmp(name, "variance_scaling(", 17) == 0) return parse_variance_scaling(name, out);
    if (strncmp(name, "random_normal", 13) == 0 && (!name[13] || name[13] == '('))
        return parse_random(name, 13, true, out);
    if (strncmp(name, "random_uniform", 14) == 0 && (!name[14] || name[14] == '('))
        return parse_random(name, 14, false, out);
    if (strcmp(name, "zeros") == 0) {
        *out = constant("zeros", 0.0f);
        return true;
    }
    if (strcmp(name, "ones") == 0) {
        *out = constant("ones", 1.0f);
        return true;
    }
    nb__set_last_error("init: unknown initializer '%s' (known: glorot_uniform, glorot_normal, "
                       "he_uniform, he_normal, lecun_uniform, lecun_normal, zeros, ones, "
                       "random_normal(MEAN,STDDEV), random_uniform(MIN,MAX), "
                       "variance_scaling(SCALE,MODE,DISTRIBUTION))",
                       name);
    return false;
}

/* Checks a variance-scaling init and its fans; on success *var is scale/fan,
 * the variance of the values drawn. The message names the caller. */
static bool vs_variance(const char *who, const nb_init *init, int fan_in, int fan_out,
                        double *var) {
    /* written so that NaN fails too */
    if (!(init->scale > 0.0) || !isfinite(init->scale)) {
        nb__set_last_error("%s: %s scale is %g, must be a finite number > 0", who,
                           init->name ? init->name : "variance_scaling", init->scale);
        return false;
    }
    if (fan_in < 1 || fan_out < 1) {
        nb__set_last_error("%s: fan_in %d, fan_out %d: fans must be >= 1", who, fan_in, fan_out);
        return false;
    }
    double fan;
    switch (init->mode) {
    case NB_FAN_IN: fan = fan_in; break;
    case NB_FAN_OUT: fan = fan_out; break;
    case NB_FAN_AVG: fan = ((double)fan_in + (double)fan_out) / 2.0; break;
    default:
        nb__set_last_error("%s: unknown fan mode %d", who, (int)init->mode);
        return false;
    }
    switch (init->distribution) {
    case NB_DIST_TRUNCATED_NORMAL:
    case NB_DIST_NORMAL:
    case NB_DIST_UNIFORM: break;
    default:
        nb__set_last_error("%s: unknown distribution %d", who, (int)init->distribution);
        return false;
    }
    *var = init->scale / fan;
    return true;
}

nb_status nb_init_fill(nb_tensor *t, const nb_init *init, int fan_in, int fan_out, nb_rng *rng) {
    if (!t || !t->data) {
        nb__set_last_error("init: tensor is NULL");
        return NB_ERROR;
    }
    if (!init) {
        nb__set_last_error("init: initializer for tensor '%s' is NULL", t->name);
        return NB_ERROR;
    }
    if (init->kind == NB_INIT_CONSTANT) {
        /* like Keras's Zeros/Ones/Constant: neither the fans nor a stream matter */
        for (size_t i = 0; i < t->size; i++) t->data[i] = init->value;
        return NB_OK;
    }
    if (init->kind == NB_INIT_RANDOM) {
        const bool normal = init->distribution == NB_DIST_NORMAL;
        if (!rng || !(normal ? init->stddev > 0 && isfinite(init->stddev) && isfinite(init->mean)
                             : init->distribution == NB_DIST_UNIFORM && init->minval < init->maxval &&
                                   isfinite(init->minval) && isfinite(init->maxval))) {
            nb__set_last_error("init: %s for tensor '%s': %s", init->name ? init->name : "random", t->name,
                               !rng ? "the random stream is NULL" : "bad parameters");
            return NB_ERROR;
        }
        for (size_t i = 0; i < t->size; i++)
            t->data[i] = normal ? (float)(init->mean + init->stddev * nb_rng_normal(rng))
                                : (float)(init->minval + (init->maxval - init->minval) * (double)nb_rng_uniform(rng));
        return NB_OK;
    }
    if (init->kind != NB_INIT_VARIANCE_SCALING) {
        nb__set_last_error("init: unknown initializer kind %d", (int)init->kind);
        return NB_ERROR;
    }
    double var;
    if (!vs_variance("init", init, fan_in, fan_out, &var)) return NB_ERROR;
    if (!rng) {
        nb__set_last_error("init: random stream for tensor '%s' is NULL", t->name);
        return NB_ERROR;
    }

    float *x = t->data;
    const size_t n = t->size;
    switch (init->distribution) {
    case NB_DIST_TRUNCATED_NORMAL: {
        const double s = sqrt(var) / NB_TRUNC_STDDEV;
        for (size_t i = 0; i < n; i++) {
            /* rejection, as Keras's truncated_normal: about 4.6% of draws are redrawn */
            double z;
            do z = nb_rng_normal(rng);
            while (fabs(z) > 2.0);
            x[i] = (float)(z * s);
        }
        break;
    }
    case NB_DIST_NORMAL: {
        const double s = sqrt(var);
        for (size_t i = 0; i < n; i++) x[i] = (float)(nb_rng_normal(rng) * s);
        break;
    }
    case NB_DIST_UNIFORM: {
        /* [-limit, limit): Keras excludes maxval too (float rounding may reach it) */
        const double limit = sqrt(3.0 * var);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((2.0 * (double)nb_rng_uniform(rng) - 1.0) * limit);
        break;
    }
    }
    return NB_OK;
}

double nb_init_stddev(const nb_init *init, int fan_in, int fan_out) {
    if (!init) {
        nb__set_last_error("init_stddev: initializer is NULL");
        return -1.0;
    }
    if (init->kind == NB_INIT_CONSTANT) return 0.0;
    if (init->kind == NB_INIT_RANDOM)
        return init->distribution == NB_DIST_NORMAL ? init->stddev : (init->maxval - init->minval) / sqrt(12.0);
    if (init->kind != NB_INIT_VARIANCE_SCALING) {
        nb__set_last_error("init_stddev: unknown initializer kind %d", (int)init->kind);
        return -1.0;
    }
    double var;
    if (!vs_variance("init_stddev", init, fan_in, fan_out, &var)) return -1.0;
    /* the same for all three distributions: that is the point of the 0.8796 factor */
    return sqrt(var);
}
