/* ops/layernorm.c — layer normalization over the last axis of each row.
 *
 * x is seen as R rows of F features (row-major [R,F], F the last dim). Each
 * row is normalized by its own mean and biased variance:
 *     xhat = (x - mean) · inv_std,  inv_std = 1/sqrt(var + eps)
 *     y    = gamma · xhat + beta     (gamma, beta: [F], optional)
 * Rows are independent, so rows go to threads. A row's sums run along it
 * in LANES float lanes (so they vectorize), each lane's partial added into
 * a double every CHUNK elements; the lanes combine in a fixed order. The
 * gradients of gamma and beta are sums over rows, made per block of rows
 * (a fixed number of rows, a function of F only) into the graph's scratch
 * and combined in block order, so no result depends on the number of
 * threads. */
#include <math.h>
#include <string.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "nabla/ops.h"

#define EPS(n) ((n)->attr.f[0])

/* Lanes of a row's sums, in four accumulators (four chains of adds in
 * flight, not one), and elements per chunk summed in float before they go
 * into the lanes' doubles: 4 per lane, within 2 ulp. */
#define LANES 16
#define CHUNK (16 * LANES)

/* The lanes as GNU C vectors: the loop vectorizer leaves lane arrays in
 * scalar code, and these map to whatever vector width the clone has (one
 * zmm, two ymm, four xmm) with the same result, since each lane's sum
 * keeps its order. */
typedef float nb_vf __attribute__((vector_size(4 * LANES)));
typedef double nb_vd __attribute__((vector_size(8 * LANES)));

/* Macros, not functions: a function passing a vector by value would
 * change its ABI between the clones. */
#define VLOAD(v, p) memcpy(&(v), (p), sizeof(v))
/* The first n (< LANES) elements of p, the rest 0. */
#define VLOAD_PART(v, p, n)                                       \
    do {                                                          \
        float t_[LANES] = {0};                                    \
        for (size_t k_ = 0; k_ < (n); k_++) t_[k_] = (p)[k_];     \
        memcpy(&(v), t_, sizeof(v));                              \
    } while (0)

/* Rows per block of the gradient's column sums: about BLOCK_ELEMS
 * elements, whole groups of GROUP rows; GROUP rows summed in float before
 * each double add. */
#define BLOCK_ELEMS 32768
#define GROUP 8

static size_t block_rows(size_t F) {
    const size_t rb = BLOCK_ELEMS / F / GROUP * GROUP;
    return rb ? rb : GROUP;
}
static size_t block_count(size_t R, size_t F) { return (R + block_rows(F) - 1) / block_rows(F); }

/* aux: mean [R], inv_std [R] of the rows, for backward. */
static size_t ln_aux(const nb_node *n) { return 2 * (n->in[0]->size / nb__norm_features(n)); }

/* scratch: per block of rows, two double column sums [F] and two float
 * ones [F] (6 floats a feature), then gamma and beta [F] with absent ones
 * as 1 and 0. */
static size_t ln_scratch(const nb_node *n) {
    const size_t F = nb__norm_features(n), R = n->in[0]->size / F;
    return 6 * block_count(R, F) * F + 2 * F;
}

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

/* The row helpers are always inlined: called, they would run as the
 * baseline (SSE2) build, not as the clone that calls them. */
#define ROW_HELPER static inline __attribute__((always_inline))

/* The lanes' doubles, summed pairwise in a fixed order. */
ROW_HELPER double lanes_total(const nb_vd *v) {
    double l[LANES];
    memcpy(l, v, sizeof l);
    for (int w = LANES / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++) l[k] += l[k + w];
    return l[0];
}

/* x: [F] -> sum of x - c and of (x - c)², for a float c near the mean. */
ROW_HELPER void row_dev_sums(const float *restrict x, size_t F, float c, double *s, double *q) {
    nb_vd ds = {0}, dq = {0};
    for (size_t j0 = 0; j0 < F; j0 += CHUNK) {
        const size_t j1 = j0 + CHUNK < F ? j0 + CHUNK : F;
        nb_vf s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};
        nb_vf d0, d1, d2, d3;
        size_t j = j0;
        for (; j + 4 * LANES <= j1; j += 4 * LANES) {
            VLOAD(d0, x + j), VLOAD(d1, x + j + LANES);
            VLOAD(d2, x + j + 2 * LANES), VLOAD(d3, x + j + 3 * LANES);
            d0 -= c, d1 -= c, d2 -= c, d3 -= c;
            s0 += d0, s1 += d1, s2 += d2, s3 += d3;
            q0 += d0 * d0, q1 += d1 * d1, q2 += d2 * d2, q3 += d3 * d3;
        }
        for (; j + LANES <= j1; j += LANES) {
            VLOAD(d0, x + j);
            d0 -= c;
            s0 += d0, q0 += d0 * d0;
        }
        if (j < j1) {
            float t[LANES] = {0}; /* deviations, 0 past the end */
            for (size_t k = 0; k < j1 - j; k++) t[k] = x[j + k] - c;
            VLOAD(d1, t);
            s1 += d1, q1 += d1 * d1;
        }
        const nb_vf fs = (s0 + s1) + (s2 + s3), fq = (q0 + q1) + (q2 + q3);
        ds += __builtin_convertvector(fs, nb_vd), dq += __builtin_convertvector(fq, nb_vd);
    }
    *s = lanes_total(&ds), *q = lanes_total(&dq);
}

/* x: [F] -> its sum in float lanes: a rough one, only the shift of
 * row_dev_sums, which makes the exact mean and variance. */
ROW_HELPER float row_rough_sum(const float *restrict x, size_t F) {
    nb_vf l0 = {0}, l1 = {0}, l2 = {0}, l3 = {0}, v0, v1, v2, v3;
    size_t j = 0;
    for (; j + 4 * LANES <= F; j += 4 * LANES) {
        VLOAD(v0, x + j), VLOAD(v1, x + j + LANES);
        VLOAD(v2, x + j + 2 * LANES), VLOAD(v3, x + j + 3 * LANES);
        l0 += v0, l1 += v1, l2 += v2, l3 += v3;
    }
    for (; j + LANES <= F; j += LANES) {
        VLOAD(v0, x + j);
        l0 += v0;
    }
    if (j < F) {
        VLOAD_PART(v1, x + j, F - j);
        l1 += v1;
    }
    l0 = (l0 + l1) + (l2 + l3);
    float t[LANES];
    memcpy(t, &l0, sizeof t);
    for (int w = LANES / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++) t[k] += t[k + w];
    return t[0];
}

// x: [R,F], gamma, beta: [F] -> y: [R,F], rows [r0, r1); mean, inv_std: [R]
NB_KERNEL_CLONES
static void ln_rows(size_t r0, size_t r1, const float *restrict x, size_t F, double eps,
                    const float *restrict gv, const float *restrict bv, float *restrict mean,
                    float *restrict inv_std, float *restrict y) {
    for (size_t r = r0; r < r1; r++) {
        const float *restrict xr = x + r * F;
        float *restrict yr = y + r * F;
        /* deviations from a rough mean, then mean = c + S/F and
         * M2 = Q - S²/F: the cancellation there is only by
         * 1 + ((mean - c)/std)², about 1, not by 1 + (mean/std)² as with
         * sums of x and x² */
        const float c = row_rough_sum(xr, F) / (float)F;
        double s, q;
        row_dev_sums(xr, F, c, &s, &q);
        const double ms = s / (double)F, m = c + ms;
        const double v = (q - s * ms) / (double)F;
        const float mf = (float)m, is = (float)(1.0 / sqrt((v > 0.0 ? v : 0.0) + eps));
        mean[r] = mf;
        inv_std[r] = is;
        for (size_t j = 0; j < F; j++) yr[j] = gv[j] * ((xr[j] - mf) * is) + bv[j];
    }
}

// x: [R,F], gamma, beta: [F] -> y: [R,F]; mean, inv_std: [R] in aux
static nb_status ln_forward(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0], *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    const size_t F = nb__norm_features(n), R = x->size / F, size = x->size;
    const size_t blocks = block_count(R, F);
    float *gs = g->scratch + 6 * blocks * F, *bs = gs + F;
    for (size_t j = 0; j < F; j++) gs[j] = gamma ? gamma->value[j] : 1.0f;
    for (size_t j = 0; j < F; j++) bs[j] = beta ? beta->value[j] : 0.0f;
    const float *xv = x->value;
    float *mean = n->aux, *inv_std = n->aux + R, *y = n->value;
    const double eps = EPS(n);
    NB_PARALLEL_RANGE_IF(size >= NB_PAR_MIN, r0, r1, R,
                         ln_rows(r0, r1, xv, F, eps, gs, bs, mean, inv_std, y));
    return NB_OK;
}

/* Per row, with dxhat = gamma·dy:
 *     dx = inv_std · (dxhat - mean(dxhat) - xhat·mean(dxhat·xhat))
 * and over rows dgamma = sum(dy·xhat), dbeta = sum(dy): per block of rows,
 * GROUP rows at a time in float (cg, cb), then into the block's doubles
 * (sg, sb). Blocks [b0, b1) of rb rows. */
NB_KERNEL_CLONES
static void ln_grad_blocks(size_t b0, size_t b1, const float *restrict x, const float *restrict dy,
                           size_t R, size_t F, size_t rb, const float *restrict gv,
                           const float *restrict mean, const float *restrict inv_std, bool cols,
                           float *restrict dx, double *restrict part) {
    for (size_t b = b0; b < b1; b++) {
        const size_t r0 = b * rb, r1 = r0 + rb < R ? r0 + rb : R;
        double *restrict sg = part + 3 * b * F, *restrict sb = sg + F;
        float *restrict cg = (float *)(void *)(sb + F), *restrict cb = cg + F;
        if (cols)
            for (size_t j = 0; j < F; j++) sg[j] = 0.0, sb[j] = 0.0, cg[j] = 0.0f, cb[j] = 0.0f;
        for (size_t r = r0; r < r1; r++) {
            const float *restrict xr = x + r * F, *restrict dyr = dy + r * F;
            const float m = mean[r], is = inv_std[r];
            if (cols)
                for (size_t j = 0; j < F; j++) {
                    const float xh = (xr[j] - m) * is;
                    cg[j] += dyr[j] * xh, cb[j] += dyr[j];
                }
            if (cols && ((r - r0) % GROUP == GROUP - 1 || r + 1 == r1))
                for (size_t j = 0; j < F; j++) sg[j] += cg[j], sb[j] += cb[j], cg[j] = 0.0f, cb[j] = 0.0f;
            if (!dx) continue;
            nb_vd d1 = {0}, d2 = {0};
            for (size_t j0 = 0; j0 < F; j0 += CHUNK) {
                const size_t j1 = j0 + CHUNK < F ? j0 + CHUNK : F;
                nb_vf f1 = {0}, f2 = {0}, e1 = {0}, e2 = {0}, gj, dj, xj, gk, dk, xk;
                size_t j = j0;
                for (; j + 2 * LANES <= j1; j += 2 * LANES) { /* two chains */
                    VLOAD(gj, gv + j), VLOAD(dj, dyr + j), VLOAD(xj, xr + j);
                    VLOAD(gk, gv + j + LANES), VLOAD(dk, dyr + j + LANES), VLOAD(xk, xr + j + LANES);
                    const nb_vf gd = gj * dj, xh = (xj - m) * is, ge = gk * dk, xe = (xk - m) * is;
                    f1 += gd, f2 += gd * xh, e1 += ge, e2 += ge * xe;
                }
                for (; j + LANES <= j1; j += LANES) {
                    VLOAD(gj, gv + j), VLOAD(dj, dyr + j), VLOAD(xj, xr + j);
                    const nb_vf gd = gj * dj, xh = (xj - m) * is;
                    f1 += gd, f2 += gd * xh;
                }
                if (j < j1) { /* zeros past the end: gd is 0 there */
                    VLOAD_PART(gj, gv + j, j1 - j);
                    VLOAD_PART(dj, dyr + j, j1 - j);
                    VLOAD_PART(xj, xr + j, j1 - j);
                    const nb_vf gd = gj * dj, xh = (xj - m) * is;
                    e1 += gd, e2 += gd * xh;
                }
                f1 += e1, f2 += e2;
                d1 += __builtin_convertvector(f1, nb_vd), d2 += __builtin_convertvector(f2, nb_vd);
            }
            const float m1 = (float)(lanes_total(&d1) / (double)F), m2 = (float)(lanes_total(&d2) / (double)F);
            float *restrict dxr = dx + r * F;
            for (size_t j = 0; j < F; j++) {
                const float xh = (xr[j] - m) * is;
                dxr[j] += is * (gv[j] * dyr[j] - m1 - xh * m2);
            }
        }
    }
}

static void ln_backward(nb_graph *g, nb_node *n) {
    nb_node *x = n->in[0], *gamma = nb__norm_gamma(n), *beta = nb__norm_beta(n);
    const size_t F = nb__norm_features(n), R = x->size / F, size = x->size;
    const float *xv = x->value, *dy = n->grad;
    const float *mean = n->aux, *inv_std = n->aux + R;
    float *dx = x->grad, *dgamma = gamma ? gamma->grad : NULL, *dbeta = beta ? beta->grad : NULL;
    const size_t rb = block_rows(F), blocks = block_count(R, F);
    double *part = (double *)(void *)g->scratch;
    float *gs = g->scratch + 6 * blocks * F;
    for (size_t j = 0; j < F; j++) gs[j] = gamma ? gamma->value[j] : 1.0f;
    const bool cols = dgamma || dbeta;
    if (!dx && !cols) return;
    NB_PARALLEL_RANGE_IF(size >= NB_PAR_MIN && blocks > 1, b0, b1, blocks,
                         ln_grad_blocks(b0, b1, xv, dy, R, F, rb, gs, mean, inv_std, cols, dx, part));
    if (!cols) return;
    // the blocks' column sums, in block order -> dgamma, dbeta: [F]
    for (size_t j = 0; j < F; j++) {
        double sg = 0.0, sb = 0.0;
        for (size_t b = 0; b < blocks; b++) sg += part[3 * b * F + j], sb += part[3 * b * F + F + j];
        if (dgamma) dgamma[j] += (float)sg;
        if (dbeta) dbeta[j] += (float)sb;
    }
}

const nb_op nb_op_layernorm = {.name = "layernorm",
                               .infer = ln_infer,
                               .aux = ln_aux,
                               .forward = ln_forward,
                               .backward = ln_backward,
                               .scratch = ln_scratch};

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
