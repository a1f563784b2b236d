/* ops/layernorm.c — layer normalization over the last axis of each row.
 *
 * x is seen as R rows of F features (row-major [R,F], F the last dim). Each
 * row is normalized by its own mean and biased variance:
 *     xhat = (x - mean) · inv_std,  inv_std = 1/sqrt(var + eps)
 *     y    = gamma · xhat + beta     (gamma, beta: [F], optional)
 * Rows are independent, so rows go to threads; the gradients of gamma and
 * beta are sums over rows, made per feature block in row order (features
 * split across threads, never rows) so they do not depend on the number of
 * threads. */
#include <math.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "nabla/ops.h"

#define EPS(n) ((n)->attr.f[0])

/* Features per block of the sums over rows; each block's double
 * accumulators live on the stack of the thread that owns it. */
#define FBLOCK 64


/* aux: mean [R], inv_std [R] of the rows, for backward. */
static size_t ln_aux(const nb_node *n) { return 2 * (n->in[0]->size / nb__norm_features(n)); }

static nb_status ln_infer(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0];
    if (x->shape.rank < 1) {
        char s[NB_SHAPE_STR_LEN];
        return nb__fail(g, "layernorm: x has shape %s, needs rank >= 1", nb__shape(x, s));
    }
    const nb_node *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    if (gamma && nb__norm_check_affine(g, "layernorm", x, gamma, "gamma") != NB_OK) return NB_ERROR;
    if (beta && nb__norm_check_affine(g, "layernorm", x, beta, "beta") != NB_OK) return NB_ERROR;
    n->shape = x->shape;
    n->size = x->size;
    return NB_OK;
}

// x: [R,F], gamma, beta: [F] -> y: [R,F]; mean, inv_std: [R] in aux
static nb_status ln_forward(nb_graph *g, nb_node *n) {
    (void)g;
    const nb_node *x = n->in[0], *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    const size_t F = nb__norm_features(n), R = x->size / F, size = x->size;
    const float *xv = x->value, *gv = gamma ? gamma->value : NULL, *bv = beta ? beta->value : NULL;
    float *mean = n->aux, *inv_std = n->aux + R, *y = n->value;
    const double eps = EPS(n);
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, r, R, {
        const float *xr = xv + r * F;
        float *yr = y + r * F;
        double s = 0.0;
        for (size_t j = 0; j < F; j++) s += xr[j];
        const double m = s / (double)F;
        double v = 0.0; /* two passes: no cancellation when |mean| >> std */
        for (size_t j = 0; j < F; j++) {
            double d = xr[j] - m;
            v += d * d;
        }
        const float mf = (float)m, is = (float)(1.0 / sqrt(v / (double)F + eps));
        mean[r] = mf;
        inv_std[r] = is;
        for (size_t j = 0; j < F; j++) {
            float xhat = (xr[j] - mf) * is;
            yr[j] = (gv ? gv[j] * xhat : xhat) + (bv ? bv[j] : 0.0f);
        }
    });
    return NB_OK;
}

/* Per row, with dxhat = gamma·dy:
 *     dx = inv_std · (dxhat - mean(dxhat) - xhat·mean(dxhat·xhat))
 * and over rows dgamma = sum(dy·xhat), dbeta = sum(dy). */
static void ln_backward(nb_graph *g, nb_node *n) {
    (void)g;
    nb_node *x = n->in[0], *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    const size_t F = nb__norm_features(n), R = x->size / F, size = x->size;
    const float *xv = x->value, *dy = n->grad, *gv = gamma ? gamma->value : NULL;
    const float *mean = n->aux, *inv_std = n->aux + R;
    float *dx = x->grad, *dgamma = gamma ? gamma->grad : NULL, *dbeta = beta ? beta->grad : NULL;

    if (dx) {
        NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, r, R, {
            const float *xr = xv + r * F, *dyr = dy + r * F;
            float *dxr = dx + r * F;
            const float m = mean[r], is = inv_std[r];
            double s1 = 0.0, s2 = 0.0;
            for (size_t j = 0; j < F; j++) {
                float dxhat = gv ? gv[j] * dyr[j] : dyr[j];
                s1 += dxhat;
                s2 += (double)dxhat * ((xr[j] - m) * is);
            }
            const float m1 = (float)(s1 / (double)F), m2 = (float)(s2 / (double)F);
            for (size_t j = 0; j < F; j++) {
                float dxhat = gv ? gv[j] * dyr[j] : dyr[j];
                float xhat = (xr[j] - m) * is;
                dxr[j] += is * (dxhat - m1 - xhat * m2);
            }
        });
    }

    if (!dgamma && !dbeta) return;
    // dy, x: [R,F] -> dgamma, dbeta: [F], rows summed in order per feature
    const size_t blocks = (F + FBLOCK - 1) / FBLOCK;
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN && blocks > 1, b, blocks, {
        const size_t f0 = b * FBLOCK, f1 = f0 + FBLOCK < F ? f0 + FBLOCK : F;
        double sg[FBLOCK] = {0}, sb[FBLOCK] = {0};
        for (size_t r = 0; r < R; r++) {
            const float *xr = xv + r * F, *dyr = dy + r * F;
            const float m = mean[r], is = inv_std[r];
            for (size_t j = f0; j < f1; j++) {
                sg[j - f0] += (double)dyr[j] * ((xr[j] - m) * is);
                sb[j - f0] += dyr[j];
            }
        }
        for (size_t j = f0; j < f1; j++) {
            if (dgamma) dgamma[j] += (float)sg[j - f0];
            if (dbeta) dbeta[j] += (float)sb[j - f0];
        }
    });
}

const nb_op nb_op_layernorm = {.name = "layernorm",
                               .infer = ln_infer,
                               .aux = ln_aux,
                               .forward = ln_forward,
                               .backward = ln_backward};

nb_node *nb_layernorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta, float eps) {
    if (!g || g->status != NB_OK) return NULL;
    if (!(eps > 0.0f) || !isfinite(eps)) {
        nb__fail(g, "layernorm: eps is %g, must be > 0 and finite", (double)eps);
        return NULL;
    }
    nb_attr attr = {.i = {gamma != NULL, beta != NULL}, .f = {eps}};
    nb_node *in[3] = {x};
    int n_in = 1;
    if (gamma) in[n_in++] = gamma;
    if (beta) in[n_in++] = beta;
    return nb__op_node(g, &nb_op_layernorm, n_in, in, &attr);
}
