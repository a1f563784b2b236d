/* nabla/init.h — weight initializers, by Keras's names.
 *
 * Variance scaling draws weights with variance scale / fan, where fan is
 * fan_in, fan_out or their average, from a truncated normal (cut at two
 * standard deviations, its deviation raised so the variance is still
 * scale/fan: Keras's 0.87962566103423978 factor), a normal, or a uniform
 * on [-limit, limit] with limit = sqrt(3·scale/fan). The named ones:
 *   glorot_uniform / glorot_normal   scale 1, fan_avg   (Glorot & Bengio 2010)
 *   he_uniform / he_normal           scale 2, fan_in    (He et al. 2015)
 *   lecun_uniform / lecun_normal     scale 1, fan_in    (LeCun 1998; for SELU)
 * with Keras's distributions: the *_normal ones are truncated normals.
 *
 * Fixed distributions, whatever the fans: random_normal(MEAN,STDDEV)
 * (Keras's RandomNormal; "random_normal" alone is its mean 0, stddev 0.05)
 * and random_uniform(MIN,MAX) ([MIN, MAX), Keras's RandomUniform; alone
 * [-0.05, 0.05)); the chapter's "sigmoid with N(0,1) weights" is
 * random_normal(0,1).
 */
#ifndef NABLA_INIT_H
#define NABLA_INIT_H

#include <stdbool.h>

#include "graph.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nb_fan_mode { NB_FAN_IN, NB_FAN_OUT, NB_FAN_AVG } nb_fan_mode;
typedef enum nb_distribution {
    NB_DIST_TRUNCATED_NORMAL,
    NB_DIST_NORMAL, /* untruncated */
    NB_DIST_UNIFORM
} nb_distribution;

typedef struct nb_init {
    const char *name; /* the Keras name, or "variance_scaling", "zeros", "ones", "constant" */
    enum { NB_INIT_VARIANCE_SCALING, NB_INIT_CONSTANT, NB_INIT_RANDOM } kind;
    double scale;
    nb_fan_mode mode;
    nb_distribution distribution; /* NB_INIT_RANDOM: NB_DIST_NORMAL or NB_DIST_UNIFORM */
    float value; /* NB_INIT_CONSTANT */
    double mean, stddev;   /* NB_INIT_RANDOM, normal */
    double minval, maxval; /* NB_INIT_RANDOM, uniform */
} nb_init;

/* The initializer named name (glorot_uniform, glorot_normal, he_uniform,
 * he_normal, lecun_uniform, lecun_normal, zeros, ones), written to *out;
 * out->name points to a static string. Returns false, leaving *out as it
 * was and setting nb_last_error, if name is unknown or either pointer is
 * NULL. Names are Keras's snake_case ones, case-sensitive. */
/* Also accepts random_normal, random_uniform, "random_normal(MEAN,STDDEV)"
 * (STDDEV > 0), "random_uniform(MIN,MAX)" (MIN < MAX), all finite, and
 * "variance_scaling(SCALE,MODE,DISTRIBUTION)" with MODE fan_in,
 * fan_out or fan_avg and DISTRIBUTION truncated_normal, normal or uniform,
 * e.g. "variance_scaling(2,fan_avg,uniform)" (the book's He with fan_avg). */
bool nb_init_parse(const char *name, nb_init *out);

/* A general variance-scaling initializer, named "variance_scaling". Cannot
 * fail: a bad scale, mode or distribution is reported by nb_init_fill and
 * nb_init_stddev. */
nb_init nb_init_variance_scaling(double scale, nb_fan_mode mode, nb_distribution dist);

/* Fills t from init, with the fans of the layer it belongs to (for a Dense
 * kernel [in, out]: fan_in = in, fan_out = out), drawing from rng and
 * advancing it: the same stream state gives the same values. The truncated
 * normal redraws any standard-normal draw with |z| > 2, so its values lie in
 * [-2s, 2s] with s = sqrt(scale/fan) / 0.87962566103423978; the uniform's
 * lie in [-limit, limit]. A constant init writes value everywhere and, like
 * Keras's Zeros/Ones, ignores the fans and rng (which may be NULL).
 * Errors (nb_last_error, t unchanged): NULL t or init, NULL rng for a random
 * init, fans < 1, scale not a finite number > 0, an unknown kind, mode or
 * distribution. */
nb_status nb_init_fill(nb_tensor *t, const nb_init *init, int fan_in, int fan_out, nb_rng *rng);

/* The standard deviation of the values the initializer gives: sqrt(scale/fan)
 * for all three distributions (for the truncated normal, after truncation),
 * 0 for constants, stddev or (max - min)/sqrt(12) for the fixed ones. Returns -1 and sets nb_last_error on the arguments
 * nb_init_fill would refuse (NULL init, fans < 1, bad scale, mode or kind). */
double nb_init_stddev(const nb_init *init, int fan_in, int fan_out);

#ifdef __cplusplus
}
#endif
#endif
