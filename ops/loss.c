/* ops/loss.c — losses, each a rank-0 mean: softmax cross-entropy, binary
 * cross-entropy with logits, mean squared error, Huber.
 *
 * Determinism: every loss is summed in double, first along each row (the
 * last axis) and then over the rows in order. The per-row sums are kept in
 * aux (as doubles), so rows may be summed in parallel and the result is the
 * same for any number of threads. */
#include <math.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "nabla/ops.h"

/* aux starts 64-byte aligned, so its first floats can hold doubles. */
#define DOUBLES(k) (2 * (size_t)(k))

/* The per-row sums in order, in double. */
static double sum_rows(const double *row, size_t rows) {
    double acc = 0.0;
    for (size_t r = 0; r < rows; r++) acc += row[r];
    return acc;
}

/* ---- softmax cross-entropy ---- */

static nb_status sce_infer(nb_graph *g, nb_node *n) {
    const nb_node *x = n->in[0], *t = n->in[1];
    char sx[NB_SHAPE_STR_LEN], st[NB_SHAPE_STR_LEN];
    if (x->shape.rank != 2)
        return nb__fail(g, "softmax_cross_entropy: logits must be [B,C], got %s", nb__shape(x, sx));
    int b = x->shape.dim[0];
    bool ok = (t->shape.rank == 1 && t->shape.dim[0] == b) ||
              (t->shape.rank == 2 && t->shape.dim[0] == b && t->shape.dim[1] == 1);
    if (!ok)
        return nb__fail(g, "softmax_cross_entropy: labels must be [B] or [B,1] for logits %s, got %s",
                        nb__shape(x, sx), nb__shape(t, st));
    nb__set_shape(n, 0, NULL);
    return NB_OK;
}

/* [B] row losses as doubles, then the [B,C] softmax probabilities for backward. */
static size_t sce_aux(const nb_node *n) { return DOUBLES(n->in[0]->shape.dim[0]) + n->in[0]->size; }

// logits: [B,C], labels: [B] -> loss = mean_b(logsumexp(logits[b]) - logits[b,label_b])
static nb_status sce_forward(nb_graph *g, nb_node *n) {
    const nb_node *xn = n->in[0];
    const float *x = xn->value, *t = n->in[1]->value;
    size_t b = (size_t)xn->shape.dim[0], c = (size_t)xn->shape.dim[1];
    /* every label is checked before anything is computed, serially, so the
     * first bad row is the one reported */
    for (size_t r = 0; r < b; r++) {
        float l = t[r];
        if (!(l >= 0.0f && l < (float)c && l == floorf(l)))
            return nb__fail(g, "softmax_cross_entropy: label %g at row %zu is not a class in [0,%zu)",
                            (double)l, r, c);
    }
    double *row = (double *)n->aux;
    float *p = n->aux + DOUBLES(b);
    size_t size = xn->size;
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, r, b, {
        const float *xr = x + r * c;
        float *pr = p + r * c;
        float m = xr[0];
        for (size_t j = 1; j < c; j++) m = xr[j] > m ? xr[j] : m;
        double s = 0.0;
        for (size_t j = 0; j < c; j++) {
            float e = expf(xr[j] - m);
            pr[j] = e;
            s += e;
        }
        float inv = (float)(1.0 / s);
        for (size_t j = 0; j < c; j++) pr[j] *= inv;
        size_t label = (size_t)t[r];
        row[r] = (double)m + log(s) - (double)xr[label];
    });
    n->value[0] = (float)(sum_rows(row, b) / (double)b);
    return NB_OK;
}

// dlogits = (p - onehot(label)) · dy / B; the labels get no gradient
static void sce_backward(nb_graph *g, nb_node *n) {
    (void)g;
    nb_node *xn = n->in[0];
    float *dx = xn->grad;
    if (!dx) return;
    const float *t = n->in[1]->value;
    size_t b = (size_t)xn->shape.dim[0], c = (size_t)xn->shape.dim[1];
    const float *p = n->aux + DOUBLES(b);
    float k = n->grad[0] / (float)b;
    size_t size = xn->size;
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, r, b, {
        size_t label = (size_t)t[r];
        for (size_t j = 0; j < c; j++)
            dx[r * c + j] += k * (p[r * c + j] - (j == label ? 1.0f : 0.0f));
    });
}

const nb_op nb_op_softmax_cross_entropy = {.name = "softmax_cross_entropy", .infer = sce_infer,
                                           .aux = sce_aux, .forward = sce_forward,
                                           .backward = sce_backward};

nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels) {
    return nb__op_node(g, &nb_op_softmax_cross_entropy, 2, (nb_node *[]){logits, labels}, NULL);
}

/* ---- elementwise losses: bce_with_logits, mse, huber ---- */

enum { L_BCE, L_MSE, L_HUBER };
#define KIND(n) ((n)->attr.i[0])
#define DELTA(n) ((n)->attr.f[0])

static nb_status pair_infer(nb_graph *g, nb_node *n) {
    const nb_node *a = n->in[0], *b = n->in[1];
    bool same = a->shape.rank == b->shape.rank;
    for (int d = 0; same && d < a->shape.rank; d++) same = a->shape.dim[d] == b->shape.dim[d];
    if (!same) {
        char sa[NB_SHAPE_STR_LEN], sb[NB_SHAPE_STR_LEN];
        return nb__fail(g, "%s: shapes differ: %s and %s", n->op->name, nb__shape(a, sa),
                        nb__shape(b, sb));
    }
    nb__set_shape(n, 0, NULL);
    return NB_OK;
}

/* One double per row of the inputs. */
static size_t pair_aux(const nb_node *n) {
    size_t rows, len;
    nb__rows_of(n->in[0], &rows, &len);
    return DOUBLES(rows);
}

/* bce: max(x,0) - x·t + log1p(exp(-|x|)), the softplus form that cannot overflow */
static inline double bce_term(float x, float t) {
    double xd = x;
    return (xd > 0 ? xd : 0.0) - xd * t + log1p(exp(-fabs(xd)));
}

static inline double huber_term(float p, float t, float delta) {
    double d = fabs((double)p - t);
    return d <= delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
}

// a, b: same shape [..., F] -> mean over all elements of term(a, b)
static nb_status pair_forward(nb_graph *g, nb_node *n) {
    (void)g;
    const nb_node *an = n->in[0];
    const float *a = an->value, *b = n->in[1]->value;
    size_t rows, len;
    nb__rows_of(an, &rows, &len);
    double *row = (double *)n->aux;
    int kind = KIND(n);
    float delta = DELTA(n);
    size_t size = an->size;
    NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, r, rows, {
        const float *ar = a + r * len, *br = b + r * len;
        double s = 0.0;
        switch (kind) {
        case L_BCE:
            for (size_t j = 0; j < len; j++) s += bce_term(ar[j], br[j]);
            break;
        case L_MSE:
            for (size_t j = 0; j < len; j++) {
                double d = (double)ar[j] - br[j];
                s += d * d;
            }
            break;
        default:
            for (size_t j = 0; j < len; j++) s += huber_term(ar[j], br[j], delta);
            break;
        }
        row[r] = s;
    });
    n->value[0] = (float)(sum_rows(row, rows) / (double)size);
    return NB_OK;
}

/* With k = dy/N:
 *   bce:   da = (sigmoid(x) - t)·k,           db = -x·k
 *   mse:   da = 2(a - b)·k,                   db = -da
 *   huber: da = clamp(a - b, -delta, delta)·k, db = -da */
static void pair_backward(nb_graph *g, nb_node *n) {
    (void)g;
    nb_node *an = n->in[0], *bn = n->in[1];
    const float *a = an->value, *b = bn->value;
    float *da = an->grad, *db = bn->grad;
    size_t size = an->size;
    float k = n->grad[0] / (float)size;
    int kind = KIND(n);
    float delta = DELTA(n);
    NB_PARALLEL_FOR(i, size, {
        float ga, gb;
        switch (kind) {
        case L_BCE:
            ga = (nb__sigmoid(a[i]) - b[i]) * k;
            gb = -a[i] * k;
            break;
        case L_MSE:
            ga = 2.0f * (a[i] - b[i]) * k;
            gb = -ga;
            break;
        default: {
            float d = a[i] - b[i];
            d = d > delta ? delta : d < -delta ? -delta : d;
            ga = d * k;
            gb = -ga;
            break;
        }
        }
        if (da) da[i] += ga;
        if (db) db[i] += gb;
    });
}

const nb_op nb_op_bce_with_logits = {.name = "bce_with_logits", .infer = pair_infer, .aux = pair_aux,
                                     .forward = pair_forward, .backward = pair_backward};
const nb_op nb_op_mse = {.name = "mse", .infer = pair_infer, .aux = pair_aux,
                         .forward = pair_forward, .backward = pair_backward};
const nb_op nb_op_huber = {.name = "huber", .infer = pair_infer, .aux = pair_aux,
                           .forward = pair_forward, .backward = pair_backward};

static nb_node *pair(nb_graph *g, const nb_op *op, int kind, nb_node *a, nb_node *b, float delta) {
    nb_attr attr = {.f = {delta}, .i = {kind}};
    return nb__op_node(g, op, 2, (nb_node *[]){a, b}, &attr);
}

nb_node *nb_bce_with_logits(nb_graph *g, nb_node *logits, nb_node *targets) {
    return pair(g, &nb_op_bce_with_logits, L_BCE, logits, targets, 0.0f);
}

nb_node *nb_mse(nb_graph *g, nb_node *pred, nb_node *target) {
    return pair(g, &nb_op_mse, L_MSE, pred, target, 0.0f);
}

nb_node *nb_huber(nb_graph *g, nb_node *pred, nb_node *target, float delta) {
    if (!g || g->status != NB_OK) return NULL;
    if (!(delta > 0.0f && isfinite(delta))) {
        nb__fail(g, "huber: delta must be positive and finite, got %g", (double)delta);
        return NULL;
    }
    return pair(g, &nb_op_huber, L_HUBER, pred, target, delta);
}
