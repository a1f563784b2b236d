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
 * Statistics are sums over rows. They accumulate in double, row by row in a
 * fixed order, with the features split across threads (never the rows), so
 * the results do not depend on the number of threads. */
#include <math.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "nabla/ops.h"

#define MOMENTUM(n) ((n)->attr.f[0])
#define EPS(n) ((n)->attr.f[1])
#define RUNNING_MEAN(n) ((nb_tensor *)(n)->attr.p[0])
#define RUNNING_VAR(n) ((nb_tensor *)(n)->attr.p[1])

/* Features per block of the per-feature reductions: each block's double
 * accumulators live on the stack of the thread that owns it. */
#define FBLOCK 64


/* aux: mean [F], inv_std [F], then one float: 1 if the forward pass used
 * the running statistics (inference), 0 if the batch's (training). */
static size_t bn_aux(const nb_node *n) { return 2 * nb__norm_features(n) + 1; }

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

// x: [R,F] -> sum: [F] in double, rows added in order; the features of
// [f0, f1) only (at most FBLOCK of them).
static void column_sums(const float *x, size_t R, size_t F, size_t f0, size_t f1, double *sum) {
    for (size_t j = f0; j < f1; j++) sum[j - f0] = 0.0;
    for (size_t r = 0; r < R; r++) {
        const float *row = x + r * F;
        for (size_t j = f0; j < f1; j++) sum[j - f0] += row[j];
    }
}

static nb_status bn_forward(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0], *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    const size_t F = nb__norm_features(n), R = x->size / F;
    const float *xv = x->value, *gv = gamma ? gamma->value : NULL, *bv = beta ? beta->value : NULL;
    float *mean = n->aux, *inv_std = n->aux + F, *y = n->value;
    const double eps = EPS(n);
    const bool training = nb__node_training(g, n);
    n->aux[2 * F] = training ? 0.0f : 1.0f;

    if (training) {
        nb_tensor *rm = RUNNING_MEAN(n), *rv = RUNNING_VAR(n);
        const double mom = MOMENTUM(n);
        const size_t blocks = (F + FBLOCK - 1) / FBLOCK, size = x->size;
        /* two passes (mean, then squared deviations) rather than sum and
         * sum of squares, which cancel when |mean| >> std */
        NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN && blocks > 1, b, blocks, {
            const size_t f0 = b * FBLOCK, f1 = f0 + FBLOCK < F ? f0 + FBLOCK : F;
            double m[FBLOCK], v[FBLOCK];
            column_sums(xv, R, F, f0, f1, m);
            for (size_t j = f0; j < f1; j++) m[j - f0] /= (double)R, v[j - f0] = 0.0;
            for (size_t r = 0; r < R; r++) {
                const float *row = xv + r * F;
                for (size_t j = f0; j < f1; j++) {
                    double d = row[j] - m[j - f0];
                    v[j - f0] += d * d;
                }
            }
            for (size_t j = f0; j < f1; j++) {
                /* biased, for normalizing and for the moving variance alike:
                 * Keras 3 (and tf.keras on Dense outputs) use the batch's
                 * own moments, with no Bessel correction */
                double var = v[j - f0] / (double)R;
                mean[j] = (float)m[j - f0];
                inv_std[j] = (float)(1.0 / sqrt(var + eps));
                rm->data[j] = (float)(mom * rm->data[j] + (1.0 - mom) * m[j - f0]);
                rv->data[j] = (float)(mom * rv->data[j] + (1.0 - mom) * var);
            }
        });
    } else {
        const float *rm = RUNNING_MEAN(n)->data, *rv = RUNNING_VAR(n)->data;
        for (size_t j = 0; j < F; j++) {
            mean[j] = rm[j];
            inv_std[j] = (float)(1.0 / sqrt((double)rv[j] + eps));
        }
    }

    // x: [R,F], mean, inv_std, gamma, beta: [F] -> y: [R,F]
    const size_t size = x->size;
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, r, R, {
        const float *xr = xv + r * F;
        float *yr = y + r * F;
        for (size_t j = 0; j < F; j++) {
            float xhat = (xr[j] - mean[j]) * inv_std[j];
            yr[j] = (gv ? gv[j] * xhat : xhat) + (bv ? bv[j] : 0.0f);
        }
    });
    return NB_OK;
}

/* Training:  dx = gamma·inv_std · (dy - sum(dy)/R - xhat·sum(dy·xhat)/R)
 * (the batch's mean and variance depend on x). Inference: the statistics
 * are constants, dx = gamma·inv_std·dy. Both: dgamma = sum(dy·xhat),
 * dbeta = sum(dy), sums over the R rows. */
static void bn_backward(nb_graph *g, nb_node *n) {
    (void)g;
    nb_node *x = n->in[0], *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    const size_t F = nb__norm_features(n), R = x->size / F, size = x->size;
    const float *xv = x->value, *dy = n->grad, *gv = gamma ? gamma->value : NULL;
    const float *mean = n->aux, *inv_std = n->aux + F;
    const bool training = n->aux[2 * F] == 0.0f;
    float *dx = x->grad, *dgamma = gamma ? gamma->grad : NULL, *dbeta = beta ? beta->grad : NULL;
    /* each block of features first sums dy and dy·xhat over all rows, then
     * makes its columns of dx: the sums stay on the owning thread's stack */
    const size_t blocks = (F + FBLOCK - 1) / FBLOCK;
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN && blocks > 1, b, blocks, {
        const size_t f0 = b * FBLOCK, f1 = f0 + FBLOCK < F ? f0 + FBLOCK : F;
        double sdy[FBLOCK], sdyx[FBLOCK];
        column_sums(dy, R, F, f0, f1, sdy);
        for (size_t j = f0; j < f1; j++) sdyx[j - f0] = 0.0;
        for (size_t r = 0; r < R; r++) {
            const float *xr = xv + r * F, *dyr = dy + r * F;
            for (size_t j = f0; j < f1; j++)
                sdyx[j - f0] += (double)dyr[j] * ((xr[j] - mean[j]) * inv_std[j]);
        }
        for (size_t j = f0; j < f1; j++) {
            if (dgamma) dgamma[j] += (float)sdyx[j - f0];
            if (dbeta) dbeta[j] += (float)sdy[j - f0];
        }
        if (!dx) continue;
        float k[FBLOCK], mdy[FBLOCK], mdyx[FBLOCK];
        for (size_t j = f0; j < f1; j++) {
            k[j - f0] = (gv ? gv[j] : 1.0f) * inv_std[j];
            mdy[j - f0] = training ? (float)(sdy[j - f0] / (double)R) : 0.0f;
            mdyx[j - f0] = training ? (float)(sdyx[j - f0] / (double)R) : 0.0f;
        }
        // dy, x: [R,F] -> dx: [R,F], this block's features
        for (size_t r = 0; r < R; r++) {
            const float *xr = xv + r * F, *dyr = dy + r * F;
            float *dxr = dx + r * F;
            for (size_t j = f0; j < f1; j++) {
                float xhat = (xr[j] - mean[j]) * inv_std[j];
                dxr[j] += k[j - f0] * (dyr[j] - mdy[j - f0] - xhat * mdyx[j - f0]);
            }
        }
    });
}

const nb_op nb_op_batchnorm = {.name = "batchnorm",
                               .infer = bn_infer,
                               .aux = bn_aux,
                               .forward = bn_forward,
                               .backward = bn_backward};

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
