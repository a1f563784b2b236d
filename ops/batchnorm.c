/* ops/batchnorm.c — batch normalization over every axis but the last.
 *
 * x is seen as R rows of F features (row-major [R,F], F the last dim). In
 * training the statistics are those of the batch: per feature, the mean and
 * the biased variance over the R rows; in inference they are the running
 * statistics. Either way
 *     xhat = (x - mean) · inv_std,  inv_std = 1/sqrt(var + eps)
 *     y    = gamma · xhat + beta
 * and the forward pass keeps mean and inv_std in aux, with the mode it ran
 * in, so the backward pass differentiates the map the forward pass applied.
 *
 * Every pass runs along rows, so the inner loops run along the contiguous
 * feature axis and vectorize, with per-feature accumulators in arrays of F.
 * Sums over rows are made per block of rows (a fixed number of rows, a
 * function of F only), in double, each block's into its own slot of the
 * graph's scratch; the blocks are then combined one after the other in
 * block order. Threads take whole blocks, so the results are the same bits
 * whatever the number of threads. */
#include <math.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "nabla/ops.h"

#define MOMENTUM(n) ((n)->attr.f[0])
#define EPS(n) ((n)->attr.f[1])
#define RUNNING_MEAN(n) ((nb_tensor *)(n)->attr.p[0])
#define RUNNING_VAR(n) ((nb_tensor *)(n)->attr.p[1])

/* Elements per block of rows: 128 KB, so the second pass over a block (the
 * squared deviations from its mean) reads it from L2, not memory. */
#define BLOCK_ELEMS 32768

/* Rows summed in float before a sum goes into its double accumulator: one
 * double add (and conversion) per 8 elements instead of per element. A
 * sum of 8 floats is within 3 ulp of the exact (a tree of depth 3); in the
 * statistics the terms are deviations from a shift near the mean, so the
 * error is relative to the spread of x, not to its mean. */
#define GROUP 8


static size_t block_rows(size_t F) {
    const size_t rb = BLOCK_ELEMS / F / GROUP * GROUP; /* whole groups of rows */
    return rb ? rb : GROUP;
}
static size_t block_count(size_t R, size_t F) { return (R + block_rows(F) - 1) / block_rows(F); }

/* aux: mean [F], inv_std [F], then one float: 1 if the forward pass used
 * the running statistics (inference), 0 if the batch's (training). */
static size_t bn_aux(const nb_node *n) { return 2 * nb__norm_features(n) + 1; }

/* scratch: two doubles per feature per block of rows (4 floats; the arena
 * is 64-byte aligned), two more per feature for their combination, then
 * the per-feature coefficients of the elementwise pass (up to 4 floats). */
static size_t bn_scratch(const nb_node *n) {
    const size_t F = nb__norm_features(n), R = n->in[0]->size / F;
    /* with processes in sync: 2F + 2 doubles to sum over them */
    return 6 * block_count(R, F) * F + 8 * F + (n->graph->sync ? 4 * F + 4 : 0);
}

/* The sync buffer: after the coefficients. */
static double *sync_buffer(const nb_graph *g, size_t blocks, size_t F) {
    return (double *)(void *)(g->scratch + 6 * blocks * F + 8 * F);
}

/* Processes in sync (nb_graph_sync): m and v, the local mean and squared
 * deviations over R rows, become those of the global batch, whose count
 * goes into *N. Two sums: the counts and weighted means, then the squared
 * deviations about the global mean (no cancellation). */
static nb_status sync_stats(nb_graph *g, nb_node *n, size_t F, size_t R, double *buf, double *m, double *v,
                            double *N) {
    buf[0] = (double)R;
    for (size_t j = 0; j < F; j++) buf[1 + j] = (double)R * m[j];
    if (g->sync->sum(g->sync->user, buf, (int)(F + 1)) != NB_OK)
        return nb__fail(g, "batchnorm '%s': summing the statistics over the processes failed", n->name);
    *N = buf[0];
    for (size_t j = 0; j < F; j++) {
        const double mean = buf[1 + j] / *N, d = m[j] - mean;
        buf[j] = v[j] + (double)R * d * d;
        m[j] = mean;
    }
    if (g->sync->sum(g->sync->user, buf, (int)F) != NB_OK)
        return nb__fail(g, "batchnorm '%s': summing the statistics over the processes failed", n->name);
    for (size_t j = 0; j < F; j++) v[j] = buf[j];
    return NB_OK;
}

static nb_status check_running(nb_graph *g, const nb_node *x, const nb_tensor *t, const char *what) {
    int F = x->shape.dim[x->shape.rank - 1];
    if (t->size != (size_t)F) {
        char st[NB_SHAPE_STR_LEN], sx[NB_SHAPE_STR_LEN];
        nb_shape_str(&t->shape, st, sizeof st);
        return nb__fail(g, "batchnorm: %s has shape %s, expected [%d] (the last dim of x %s)", what,
                        st, F, nb__shape(x, sx));
    }
    return NB_OK;
}

static nb_status bn_infer(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0];
    if (x->shape.rank < 2) {
        char s[NB_SHAPE_STR_LEN];
        return nb__fail(g, "batchnorm: x has shape %s, needs rank >= 2 (rows and features)",
                        nb__shape(x, s));
    }
    const nb_node *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    if (gamma && nb__norm_check_affine(g, "batchnorm", x, gamma, "gamma") != NB_OK) return NB_ERROR;
    if (beta && nb__norm_check_affine(g, "batchnorm", x, beta, "beta") != NB_OK) return NB_ERROR;
    if (check_running(g, x, RUNNING_MEAN(n), "running_mean") != NB_OK) return NB_ERROR;
    if (check_running(g, x, RUNNING_VAR(n), "running_var") != NB_OK) return NB_ERROR;
    n->shape = x->shape;
    n->size = x->size;
    return NB_OK;
}

/* x: [R,F], blocks [b0, b1) of rb rows -> part: per block, the block's
 * mean [F] then the sum of squared deviations from it [F], in double, with
 * c [F] (in the third slot) as scratch. One pass over the block after the
 * first rows: sums of d = x - c and of d² for c the mean of the first
 * GROUP rows, then M2 = sum(d²) - sum(d)²/n. That cancels only by the
 * factor 1 + ((mean - c)/std)², about 1 here, where the sums of x and x²
 * would cancel by 1 + (mean/std)². */
NB_KERNEL_CLONES
static void stat_blocks(size_t b0, size_t b1, const float *restrict x, size_t R, size_t F,
                        size_t rb, double *restrict part) {
    for (size_t b = b0; b < b1; b++) {
        const size_t r0 = b * rb, r1 = r0 + rb < R ? r0 + rb : R, n = r1 - r0;
        double *restrict s = part + 3 * b * F, *restrict q = s + F, *restrict cd = q + F;
        const float *restrict xb = x + r0 * F;
        const size_t nc = n < GROUP ? n : GROUP;
        const float inv_nc = 1.0f / (float)nc;
        float *restrict c = (float *)(void *)cd;
        for (size_t j = 0; j < F; j++) c[j] = 0.0f, s[j] = 0.0, q[j] = 0.0;
        for (size_t r = 0; r < nc; r++)
            for (size_t j = 0; j < F; j++) c[j] += xb[r * F + j];
        for (size_t j = 0; j < F; j++) c[j] *= inv_nc;
        size_t r = 0;
        for (; r + GROUP <= n; r += GROUP) {
            const float *restrict xr = xb + r * F;
            for (size_t j = 0; j < F; j++) {
                const float d0 = xr[j] - c[j], d1 = xr[F + j] - c[j];
                const float d2 = xr[2 * F + j] - c[j], d3 = xr[3 * F + j] - c[j];
                const float d4 = xr[4 * F + j] - c[j], d5 = xr[5 * F + j] - c[j];
                const float d6 = xr[6 * F + j] - c[j], d7 = xr[7 * F + j] - c[j];
                s[j] += (double)(((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7)));
                q[j] += (double)(((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)) +
                                 ((d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7)));
            }
        }
        for (; r < n; r++) {
            const float *restrict xr = xb + r * F;
            for (size_t j = 0; j < F; j++) {
                const float d = xr[j] - c[j];
                s[j] += (double)d;
                q[j] += (double)(d * d);
            }
        }
        const double inv_n = 1.0 / (double)n;
        for (size_t j = 0; j < F; j++) {
            const double mean_d = s[j] * inv_n;
            q[j] = q[j] - s[j] * mean_d; /* M2 */
            s[j] = (double)c[j] + mean_d;
        }
    }
}

/* part: the blocks' means and squared deviations -> m: the mean [F], v:
 * the sum of squared deviations from it [F]; blocks in order, each block's
 * deviations about its own mean plus its count times the square of its
 * mean's distance to the whole mean. Loops over blocks outside, features
 * inside, so they vectorize. */
NB_KERNEL_CLONES
static void combine_stats(const double *restrict part, size_t R, size_t F, size_t rb,
                          size_t blocks, double *restrict m, double *restrict v) {
    for (size_t j = 0; j < F; j++) m[j] = 0.0, v[j] = 0.0;
    for (size_t b = 0; b < blocks; b++) {
        const double cnt = (double)(b + 1 < blocks ? rb : R - b * rb);
        const double *restrict mb = part + 3 * b * F;
        for (size_t j = 0; j < F; j++) m[j] += cnt * mb[j];
    }
    const double inv_r = 1.0 / (double)R;
    for (size_t j = 0; j < F; j++) m[j] *= inv_r;
    for (size_t b = 0; b < blocks; b++) {
        const double cnt = (double)(b + 1 < blocks ? rb : R - b * rb);
        const double *restrict mb = part + 3 * b * F, *restrict vb = mb + F;
        for (size_t j = 0; j < F; j++) {
            const double d = mb[j] - m[j];
            v[j] += vb[j] + cnt * d * d;
        }
    }
}

/* m, v: the batch's mean and squared deviations [F] -> mean, inv_std [F],
 * and the running statistics moved towards the batch's. The variance is
 * biased, for normalizing and for the moving variance alike: Keras 3 (and
 * tf.keras on Dense outputs) use the batch's own moments, with no Bessel
 * correction. */
NB_KERNEL_CLONES
static void finish_stats(size_t F, size_t R, const double *restrict m, const double *restrict v,
                         double eps, double mom, float *restrict mean, float *restrict inv_std,
                         float *restrict rm, float *restrict rv) {
    const double inv_r = 1.0 / (double)R;
    for (size_t j = 0; j < F; j++) {
        const double var = v[j] * inv_r;
        mean[j] = (float)m[j];
        inv_std[j] = 1.0f / sqrtf((float)(var + eps)); /* within 1 ulp; float vectors are twice as wide */
        rm[j] = (float)(mom * rm[j] + (1.0 - mom) * m[j]);
        rv[j] = (float)(mom * rv[j] + (1.0 - mom) * var);
    }
}

// x: [R,F], mean, a, c: [F] -> y: [R,F], rows [r0, r1): y = (x - mean)·a + c.
// Four rows at a time, so each load of mean, a and c serves four elements
// (loads, not arithmetic, bound this loop when x is in cache).
NB_KERNEL_CLONES
static void affine_rows(size_t r0, size_t r1, const float *restrict x, size_t F,
                        const float *restrict mean, const float *restrict a,
                        const float *restrict c, float *restrict y) {
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float *restrict xr = x + r * F;
        float *restrict yr = y + r * F;
        for (size_t j = 0; j < F; j++) {
            const float m = mean[j], aj = a[j], cj = c[j];
            yr[j] = (xr[j] - m) * aj + cj;
            yr[F + j] = (xr[F + j] - m) * aj + cj;
            yr[2 * F + j] = (xr[2 * F + j] - m) * aj + cj;
            yr[3 * F + j] = (xr[3 * F + j] - m) * aj + cj;
        }
    }
    for (; r < r1; r++) {
        const float *restrict xr = x + r * F;
        float *restrict yr = y + r * F;
        for (size_t j = 0; j < F; j++) yr[j] = (xr[j] - mean[j]) * a[j] + c[j];
    }
}

static nb_status bn_forward(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0], *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    const size_t F = nb__norm_features(n), R = x->size / F, size = x->size;
    const float *xv = x->value, *gv = gamma ? gamma->value : NULL, *bv = beta ? beta->value : NULL;
    float *mean = n->aux, *inv_std = n->aux + F, *y = n->value;
    const size_t rb = block_rows(F), blocks = block_count(R, F);
    double *part = (double *)(void *)g->scratch;
    float *a = g->scratch + 6 * blocks * F + 4 * F, *c = a + F;
    const double eps = EPS(n);
    const bool training = nb__node_training(g, n);
    n->aux[2 * F] = training ? 0.0f : 1.0f;

    if (training) {
        NB_PARALLEL_RANGE_IF(size >= NB_PAR_MIN && blocks > 1, b0, b1, blocks,
                             stat_blocks(b0, b1, xv, R, F, rb, part));
        double *m = part, *v = part + F; /* one block: its own statistics */
        if (blocks > 1) {
            m = part + 3 * blocks * F, v = m + F;
            combine_stats(part, R, F, rb, blocks, m, v);
        }
        double N = (double)R;
        if (g->sync && sync_stats(g, n, F, R, sync_buffer(g, blocks, F), m, v, &N) != NB_OK) return NB_ERROR;
        finish_stats(F, (size_t)N, m, v, eps, MOMENTUM(n), mean, inv_std, RUNNING_MEAN(n)->data,
                     RUNNING_VAR(n)->data);
    } else {
        const float *rm = RUNNING_MEAN(n)->data, *rv = RUNNING_VAR(n)->data;
        for (size_t j = 0; j < F; j++) {
            mean[j] = rm[j];
            inv_std[j] = (float)(1.0 / sqrt((double)rv[j] + eps));
        }
    }

    /* gamma folded into the scale once per feature, absent gamma and beta
     * as 1 and 0, so the elementwise pass is one subtraction and one
     * multiply-add per element, with no branch */
    for (size_t j = 0; j < F; j++) a[j] = gv ? gv[j] * inv_std[j] : inv_std[j];
    for (size_t j = 0; j < F; j++) c[j] = bv ? bv[j] : 0.0f;
    NB_PARALLEL_RANGE_IF(size >= NB_PAR_MIN, r0, r1, R, affine_rows(r0, r1, xv, F, mean, a, c, y));
    return NB_OK;
}

/* dy, x: [R,F], blocks [b0, b1) of rb rows -> part: per block, the sums
 * over its rows of dy [F] then of dy·(x - mean) [F], in double (groups of
 * rows summed in float first). */
NB_KERNEL_CLONES
static void grad_sum_blocks(size_t b0, size_t b1, const float *restrict x, const float *restrict dy,
                            size_t R, size_t F, size_t rb, const float *restrict mean,
                            double *restrict part) {
    for (size_t b = b0; b < b1; b++) {
        const size_t r0 = b * rb, r1 = r0 + rb < R ? r0 + rb : R;
        double *restrict s = part + 3 * b * F, *restrict sx = s + F;
        for (size_t j = 0; j < F; j++) s[j] = 0.0, sx[j] = 0.0;
        size_t r = r0;
        for (; r + GROUP <= r1; r += GROUP) {
            const float *restrict xr = x + r * F, *restrict d = dy + r * F;
            for (size_t j = 0; j < F; j++) {
                const float m = mean[j];
                s[j] += (double)(((d[j] + d[F + j]) + (d[2 * F + j] + d[3 * F + j])) +
                                 ((d[4 * F + j] + d[5 * F + j]) + (d[6 * F + j] + d[7 * F + j])));
                sx[j] += (double)(((d[j] * (xr[j] - m) + d[F + j] * (xr[F + j] - m)) +
                                   (d[2 * F + j] * (xr[2 * F + j] - m) + d[3 * F + j] * (xr[3 * F + j] - m))) +
                                  ((d[4 * F + j] * (xr[4 * F + j] - m) + d[5 * F + j] * (xr[5 * F + j] - m)) +
                                   (d[6 * F + j] * (xr[6 * F + j] - m) + d[7 * F + j] * (xr[7 * F + j] - m))));
            }
        }
        for (; r < r1; r++) {
            const float *restrict xr = x + r * F, *restrict d = dy + r * F;
            for (size_t j = 0; j < F; j++) {
                s[j] += (double)d[j];
                sx[j] += (double)(d[j] * (xr[j] - mean[j]));
            }
        }
    }
}

/* part: the blocks' sums -> sdy: sum(dy), sdyx: sum(dy·(x - mean)) [F],
 * blocks in order. */
NB_KERNEL_CLONES
static void combine_sums(const double *restrict part, size_t F, size_t blocks,
                         double *restrict sdy, double *restrict sdyx) {
    for (size_t j = 0; j < F; j++) sdy[j] = 0.0, sdyx[j] = 0.0;
    for (size_t b = 0; b < blocks; b++) {
        const double *restrict s = part + 3 * b * F, *restrict sx = s + F;
        for (size_t j = 0; j < F; j++) sdy[j] += s[j], sdyx[j] += sx[j];
    }
}

/* The training coefficients of dx = k·(dy - sum(dy)/R - xhat·sum(dy·xhat)/R),
 * k = gamma·inv_std in a: b multiplies x - mean, c is the constant. sdyx
 * is sum(dy·(x - mean)), so sum(dy·xhat) = inv_std·sdyx. */
NB_KERNEL_CLONES
static void grad_coefs(size_t F, size_t R, const double *restrict sdy, const double *restrict sdyx,
                       const float *restrict inv_std, const float *restrict a, float *restrict b,
                       float *restrict c) {
    const double inv_r = 1.0 / (double)R;
    for (size_t j = 0; j < F; j++) {
        const double k = a[j], is = inv_std[j];
        b[j] = (float)(-k * is * is * sdyx[j] * inv_r);
        c[j] = (float)(-k * sdy[j] * inv_r);
    }
}

// dy, x: [R,F], mean, a, b, c: [F] -> dx: [R,F] += a·dy + b·(x - mean) + c,
// rows [r0, r1), four at a time as in affine_rows
NB_KERNEL_CLONES
static void grad_rows(size_t r0, size_t r1, const float *restrict x, const float *restrict dy,
                      size_t F, const float *restrict mean, const float *restrict a,
                      const float *restrict b, const float *restrict c, float *restrict dx) {
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float *restrict xr = x + r * F, *restrict d = dy + r * F;
        float *restrict o = dx + r * F;
        for (size_t j = 0; j < F; j++) {
            const float m = mean[j], aj = a[j], bj = b[j], cj = c[j];
            o[j] += aj * d[j] + bj * (xr[j] - m) + cj;
            o[F + j] += aj * d[F + j] + bj * (xr[F + j] - m) + cj;
            o[2 * F + j] += aj * d[2 * F + j] + bj * (xr[2 * F + j] - m) + cj;
            o[3 * F + j] += aj * d[3 * F + j] + bj * (xr[3 * F + j] - m) + cj;
        }
    }
    for (; r < r1; r++) {
        const float *restrict xr = x + r * F, *restrict d = dy + r * F;
        float *restrict o = dx + r * F;
        for (size_t j = 0; j < F; j++) o[j] += a[j] * d[j] + b[j] * (xr[j] - mean[j]) + c[j];
    }
}

/* Training:  dx = gamma·inv_std · (dy - sum(dy)/R - xhat·sum(dy·xhat)/R)
 * (the batch's mean and variance depend on x). Inference: the statistics
 * are constants, dx = gamma·inv_std·dy. Both: dgamma = sum(dy·xhat),
 * dbeta = sum(dy), sums over the R rows. Two passes: the column sums, then
 * dx as a·dy + b·(x - mean) + c with per-feature coefficients. */
static void bn_backward(nb_graph *g, nb_node *n) {
    nb_node *x = n->in[0], *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    const size_t F = nb__norm_features(n), R = x->size / F, size = x->size;
    const float *xv = x->value, *dy = n->grad, *gv = gamma ? gamma->value : NULL;
    const float *mean = n->aux, *inv_std = n->aux + F;
    const bool training = n->aux[2 * F] == 0.0f;
    float *dx = x->grad, *dgamma = gamma ? gamma->grad : NULL, *dbeta = beta ? beta->grad : NULL;
    const size_t rb = block_rows(F), blocks = block_count(R, F);
    double *part = (double *)(void *)g->scratch;
    float *ca = g->scratch + 6 * blocks * F + 4 * F, *cb = ca + F, *cc = cb + F;

    const bool sums = training ? dx || dgamma || dbeta : dgamma || dbeta;
    double *sdy = part, *sdyx = part + F; /* one block: its own sums */
    if (sums) {
        NB_PARALLEL_RANGE_IF(size >= NB_PAR_MIN && blocks > 1, b0, b1, blocks,
                             grad_sum_blocks(b0, b1, xv, dy, R, F, rb, mean, part));
        if (blocks > 1) {
            sdy = part + 3 * blocks * F, sdyx = sdy + F;
            combine_sums(part, F, blocks, sdy, sdyx);
        }
        if (dgamma)
            for (size_t j = 0; j < F; j++) dgamma[j] += (float)(sdyx[j] * inv_std[j]);
        if (dbeta)
            for (size_t j = 0; j < F; j++) dbeta[j] += (float)sdy[j];
    }
    if (!dx) return;
    if (gv) {
        for (size_t j = 0; j < F; j++) ca[j] = gv[j] * inv_std[j];
    } else {
        for (size_t j = 0; j < F; j++) ca[j] = inv_std[j];
    }
    if (training && g->sync) {
        /* the global batch's sums, in its loss's units (each share's
         * weighed), brought back to this process's: dx is of its own loss */
        double *buf = sync_buffer(g, blocks, F);
        const double w = g->sync->share;
        buf[0] = (double)R;
        for (size_t j = 0; j < F; j++) buf[1 + j] = w * sdy[j], buf[1 + F + j] = w * sdyx[j];
        if (g->sync->sum(g->sync->user, buf, (int)(2 * F + 1)) != NB_OK) {
            nb__fail(g, "batchnorm '%s': summing the gradients over the processes failed", n->name);
            return;
        }
        for (size_t j = 0; j < F; j++) buf[1 + j] /= w, buf[1 + F + j] /= w;
        grad_coefs(F, (size_t)buf[0], buf + 1, buf + 1 + F, inv_std, ca, cb, cc);
    } else if (training) {
        grad_coefs(F, R, sdy, sdyx, inv_std, ca, cb, cc);
    } else {
        for (size_t j = 0; j < F; j++) cb[j] = 0.0f, cc[j] = 0.0f;
    }
    NB_PARALLEL_RANGE_IF(size >= NB_PAR_MIN, r0, r1, R,
                         grad_rows(r0, r1, xv, dy, F, mean, ca, cb, cc, dx));
}

const nb_op nb_op_batchnorm = {.name = "batchnorm",
                               .infer = bn_infer,
                               .aux = bn_aux,
                               .forward = bn_forward,
                               .backward = bn_backward,
                               .scratch = bn_scratch};

nb_node *nb_batchnorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta,
                      nb_tensor *running_mean, nb_tensor *running_var, float momentum, float eps) {
    if (!g || g->status != NB_OK) return NULL;
    if (!(eps > 0.0f) || !isfinite(eps)) {
        nb__fail(g, "batchnorm: eps is %g, must be > 0 and finite", (double)eps);
        return NULL;
    }
    if (!(momentum >= 0.0f && momentum <= 1.0f)) {
        nb__fail(g, "batchnorm: momentum is %g, must be in [0,1]", (double)momentum);
        return NULL;
    }
    if (!running_mean || !running_var) {
        nb__fail(g, "batchnorm: %s is NULL", !running_mean ? "running_mean" : "running_var");
        return NULL;
    }
    if (running_mean == running_var) {
        nb__fail(g, "batchnorm: running_mean and running_var are the same tensor");
        return NULL;
    }
    nb_attr attr = {.i = {gamma != NULL, beta != NULL}, /* as nb__norm_gamma/beta read them */
                    .f = {momentum, eps},
                    .p = {running_mean, running_var}};
    nb_node *in[3] = {x};
    int n_in = 1;
    if (gamma) in[n_in++] = gamma;
    if (beta) in[n_in++] = beta;
    return nb__op_node(g, &nb_op_batchnorm, n_in, in, &attr);
}
