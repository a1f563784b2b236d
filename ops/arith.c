/* ops/arith.c — elementwise add, sub, mul, div with broadcasting, and scale.
 *
 * One operand may be smaller than the other: its shape is the trailing
 * dimensions of the larger one (a bias [F] against [B,F]) or it has a single
 * element. The output is then seen as rows of the smaller operand's size,
 * and the smaller operand's gradient is the sum of the rows' gradients. */
#include "graph/internal.h"
#include "ops/blocksum.h"
#include "ops/common.h"
#include "nabla/ops.h"

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };
static const char *const names[] = {"add", "sub", "mul", "div"};

/* True if s is the trailing dims of big, or a single element. */
static bool broadcasts_into(const nb_shape *s, const nb_shape *big) {
    if (nb_shape_size(s) == 1) return true;
    if (s->rank > big->rank) return false;
    for (int i = 1; i <= s->rank; i++)
        if (s->dim[s->rank - i] != big->dim[big->rank - i]) return false;
    return true;
}

/* Which operand broadcasts, decided once at construction (at the largest
 * batch) and kept: at a batch of 1 a batched [B] operand has one element
 * and would otherwise pass for a scalar. */
enum { ROLE_UNSET, ROLE_SAME, ROLE_B_SMALL, ROLE_A_SMALL };
#define ROLE(n) ((n)->attr.i[1])

static bool same_shape(const nb_shape *a, const nb_shape *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

static nb_status binary_infer(nb_graph *g, nb_node *n) {
    const nb_node *a = n->in[0], *b = n->in[1];
    if (ROLE(n) == ROLE_UNSET) {
        if (same_shape(&a->shape, &b->shape)) ROLE(n) = ROLE_SAME;
        else if (broadcasts_into(&b->shape, &a->shape) && (a->size > b->size || a->shape.rank > b->shape.rank))
            ROLE(n) = ROLE_B_SMALL;
        else if (broadcasts_into(&a->shape, &b->shape)) ROLE(n) = ROLE_A_SMALL;
    }
    bool ok = ROLE(n) == ROLE_SAME      ? same_shape(&a->shape, &b->shape)
            : ROLE(n) == ROLE_B_SMALL ? broadcasts_into(&b->shape, &a->shape)
            : ROLE(n) == ROLE_A_SMALL ? broadcasts_into(&a->shape, &b->shape)
                                      : false;
    if (!ok) {
        char sa[NB_SHAPE_STR_LEN], sb[NB_SHAPE_STR_LEN];
        return nb__fail(g, "%s: shapes do not broadcast: %s and %s", names[n->attr.i[0]],
                        nb__shape(a, sa), nb__shape(b, sb));
    }
    const nb_node *big = ROLE(n) == ROLE_A_SMALL ? b : a;
    n->shape = big->shape;
    n->size = big->size;
    return NB_OK;
}

/* Runs BODY for every output element i with ia, ib the operands' indices. */
#define BROADCAST_LOOP(n_out, na, nb, BODY)                                                 \
    do {                                                                                    \
        size_t n_ = (n_out), na_ = (na), nb_ = (nb);                                        \
        if (na_ == n_ && nb_ == n_) {                                                       \
            NB_PARALLEL_FOR(i, n_, size_t ia = i, ib = i; (void)ia, (void)ib; BODY);        \
        } else {                                                                            \
            size_t inner_ = na_ < nb_ ? na_ : nb_, rows_ = n_ / inner_;                     \
            bool a_big_ = na_ == n_, b_big_ = nb_ == n_;                                    \
            for (size_t r = 0; r < rows_; r++)                                              \
                for (size_t j = 0; j < inner_; j++) {                                       \
                    size_t i = r * inner_ + j;                                              \
                    size_t ia = a_big_ ? i : j, ib = b_big_ ? i : j;                        \
                    (void)ia, (void)ib;                                                     \
                    BODY;                                                                   \
                }                                                                           \
        }                                                                                   \
    } while (0)

static nb_status binary_forward(nb_graph *g, nb_node *n) {
    (void)g;
    const float *a = n->in[0]->value, *b = n->in[1]->value;
    float *y = n->value;
    size_t na = n->in[0]->size, nb = n->in[1]->size;
    switch (n->attr.i[0]) {
    case OP_ADD: BROADCAST_LOOP(n->size, na, nb, y[i] = a[ia] + b[ib]); break;
    case OP_SUB: BROADCAST_LOOP(n->size, na, nb, y[i] = a[ia] - b[ib]); break;
    case OP_MUL: BROADCAST_LOOP(n->size, na, nb, y[i] = a[ia] * b[ib]); break;
    default:     BROADCAST_LOOP(n->size, na, nb, y[i] = a[ia] / b[ib]); break;
    }
    return NB_OK;
}

/* ---- backward ----
 * The large operand's gradient is elementwise: kernels over a range of
 * elements (or of rows, the small operand repeating along each), parallel
 * from NB_PAR_MIN elements. The small operand's gradient sums over rows:
 * column sums (ops/blocksum.h) in double, whose order depends on the row
 * index only, parallel over chunks of columns, or a whole-tensor block sum
 * when the small operand is a single element. Both are the same on any
 * number of threads. div's small-operand gradient, rare, stays a serial loop. */

// dy: [m] -> d[i] += s·dy[i]
NB_KERNEL_CLONES static void axpy_k(size_t m, float s, const float *restrict dy, float *restrict d) {
    for (size_t i = 0; i < m; i++) d[i] += s * dy[i];
}
// d[i] += dy[i]·o[i]
NB_KERNEL_CLONES static void mul_k(size_t m, const float *restrict dy, const float *restrict o, float *restrict d) {
    for (size_t i = 0; i < m; i++) d[i] += dy[i] * o[i];
}
// d[i] += dy[i] / o[i]
NB_KERNEL_CLONES static void div_k(size_t m, const float *restrict dy, const float *restrict o, float *restrict d) {
    for (size_t i = 0; i < m; i++) d[i] += dy[i] / o[i];
}
// both gradients of a same-shape add/sub in one pass over dy: da += dy, db += s·dy
NB_KERNEL_CLONES static void add2_k(size_t m, float s, const float *restrict dy, float *restrict da,
                                    float *restrict db) {
    for (size_t i = 0; i < m; i++) da[i] += dy[i], db[i] += s * dy[i];
}
// both gradients of a same-shape mul in one pass: da += dy·b, db += dy·a
NB_KERNEL_CLONES static void mul2_k(size_t m, const float *restrict dy, const float *restrict a,
                                    const float *restrict b, float *restrict da, float *restrict db) {
    for (size_t i = 0; i < m; i++) {
        const float g = dy[i];
        da[i] += g * b[i], db[i] += g * a[i];
    }
}

enum { K_AXPY, K_MUL, K_DIV };

/* d += the big operand's gradient over rows [lo, hi) of `inner` elements;
 * o repeats along each row when o_rows is false. */
static void big_rows(int k, float s, size_t lo, size_t hi, size_t inner, const float *dy, const float *o,
                     bool o_rows, float *d) {
    if (o_rows || k == K_AXPY) { /* one flat range */
        const size_t e0 = lo * inner, m = (hi - lo) * inner;
        if (k == K_AXPY) axpy_k(m, s, dy + e0, d + e0);
        else if (k == K_MUL) mul_k(m, dy + e0, o + e0, d + e0);
        else div_k(m, dy + e0, o + e0, d + e0);
        return;
    }
    for (size_t r = lo; r < hi; r++) {
        const size_t e0 = r * inner;
        if (k == K_MUL) mul_k(inner, dy + e0, o, d + e0);
        else div_k(inner, dy + e0, o, d + e0);
    }
}

static void big_grad(int k, float s, size_t n, size_t inner, const float *dy, const float *o, bool o_rows,
                     float *d) {
    const size_t rows = n / inner;
    NB_PARALLEL_RANGE_IF(n >= NB_PAR_MIN, lo, hi, rows, big_rows(k, s, lo, hi, inner, dy, o, o_rows, d));
}

// ds[j] += s·sum_r dy[r, j] (·o[r, j] if o) for the column chunks [lo, hi)
static void col_chunks(size_t lo, size_t hi, size_t rows, size_t inner, float s, const float *dy,
                       const float *o, float *ds) {
    double acc[NB_COL_CHUNK];
    for (size_t c = lo; c < hi; c++) {
        const size_t j0 = c * NB_COL_CHUNK, w = inner - j0 < NB_COL_CHUNK ? inner - j0 : NB_COL_CHUNK;
        if (o) nb__col_sums_prod(rows, inner, w, dy + j0, o + j0, acc);
        else nb__col_sums(rows, inner, w, dy + j0, NULL, acc);
        for (size_t j = 0; j < w; j++) ds[j0 + j] += (float)(s * acc[j]);
    }
}

/* ds += s·(the sum over rows of dy, times o elementwise if given): the
 * small operand's gradient, inner elements. */
static void small_grad(nb_graph *g, float s, size_t n, size_t inner, const float *dy, const float *o,
                       float *ds) {
    const size_t rows = n / inner;
    if (inner == 1 && !o) { /* a single element: a whole-tensor sum */
        ds[0] += (float)(s * nb__sum_all(NB_SUM_PLAIN, dy, n, g->scratch));
        return;
    }
    const size_t chunks = (inner + NB_COL_CHUNK - 1) / NB_COL_CHUNK;
    NB_PARALLEL_RANGE_IF(n >= NB_PAR_MIN, lo, hi, chunks, col_chunks(lo, hi, rows, inner, s, dy, o, ds));
}

static void binary_backward(nb_graph *g, nb_node *n) {
    nb_node *an = n->in[0], *bn = n->in[1];
    const float *a = an->value, *b = bn->value, *y = n->value, *dy = n->grad;
    float *da = an->grad, *db = bn->grad;
    size_t na = an->size, nb = bn->size, nn = n->size;
    int op = n->attr.i[0];
    const float sb = op == OP_SUB ? -1.0f : 1.0f; /* db's sign for add and sub */
    if (na == nn && nb == nn) {
        /* fused when the gradients are two buffers (not x·x or x+x) */
        if (da && db && da != db && op != OP_DIV) {
            if (op == OP_MUL) NB_PARALLEL_RANGE(lo, hi, nn, mul2_k(hi - lo, dy + lo, a + lo, b + lo, da + lo, db + lo));
            else NB_PARALLEL_RANGE(lo, hi, nn, add2_k(hi - lo, sb, dy + lo, da + lo, db + lo));
            return;
        }
        if (da) big_grad(op == OP_MUL ? K_MUL : op == OP_DIV ? K_DIV : K_AXPY, 1.0f, nn, nn, dy, b, true, da);
        if (db) {
            if (op == OP_DIV) BROADCAST_LOOP(nn, na, nb, db[ib] -= dy[i] * y[i] / b[ib]);
            else big_grad(op == OP_MUL ? K_MUL : K_AXPY, sb, nn, nn, dy, a, true, db);
        }
        return;
    }
    const bool b_small = nb < nn;
    const size_t inner = b_small ? nb : na;
    if (da) {
        if (b_small) /* a is big */
            big_grad(op == OP_MUL ? K_MUL : op == OP_DIV ? K_DIV : K_AXPY, 1.0f, nn, inner, dy, b, false, da);
        else if (op == OP_DIV) BROADCAST_LOOP(nn, na, nb, da[ia] += dy[i] / b[ib]);
        else small_grad(g, 1.0f, nn, inner, dy, op == OP_MUL ? b : NULL, da);
    }
    if (db) {
        if (op == OP_DIV) BROADCAST_LOOP(nn, na, nb, db[ib] -= dy[i] * y[i] / b[ib]);
        else if (b_small) small_grad(g, sb, nn, inner, dy, op == OP_MUL ? a : NULL, db);
        else big_grad(op == OP_MUL ? K_MUL : K_AXPY, sb, nn, inner, dy, a, false, db);
    }
}

static size_t binary_scratch(const nb_node *n) { return NB_SUM_SCRATCH(n->size); }

const nb_op nb_op_add = {.name = "add", .infer = binary_infer, .forward = binary_forward, .backward = binary_backward,
                        .scratch = binary_scratch};
const nb_op nb_op_sub = {.name = "sub", .infer = binary_infer, .forward = binary_forward, .backward = binary_backward,
                        .scratch = binary_scratch};
const nb_op nb_op_mul = {.name = "mul", .infer = binary_infer, .forward = binary_forward, .backward = binary_backward,
                        .scratch = binary_scratch};
const nb_op nb_op_div = {.name = "div", .infer = binary_infer, .forward = binary_forward, .backward = binary_backward,
                        .scratch = binary_scratch};

static nb_node *binary(nb_graph *g, const nb_op *op, int code, nb_node *a, nb_node *b) {
    nb_attr attr = {.i = {code}};
    return nb__op_node(g, op, 2, (nb_node *[]){a, b}, &attr);
}

nb_node *nb_add(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_add, OP_ADD, a, b); }
nb_node *nb_sub(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_sub, OP_SUB, a, b); }
nb_node *nb_mul(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_mul, OP_MUL, a, b); }
nb_node *nb_div(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, &nb_op_div, OP_DIV, a, b); }

static nb_status scale_forward(nb_graph *g, nb_node *n) {
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value, s = n->attr.f[0];
    size_t size = n->size;
    NB_PARALLEL_FOR(i, size, y[i] = s * x[i]);
    return NB_OK;
}

static void scale_backward(nb_graph *g, nb_node *n) {
    (void)g;
    float *dx = n->in[0]->grad, s = n->attr.f[0];
    const float *dy = n->grad;
    size_t size = n->size;
    NB_PARALLEL_FOR(i, size, dx[i] += s * dy[i]);
}

const nb_op nb_op_scale = {.name = "scale", .infer = nb__infer_like_input, .forward = scale_forward, .backward = scale_backward};

nb_node *nb_scale(nb_graph *g, nb_node *x, float s) {
    nb_attr attr = {.f = {s}};
    return nb__op_node(g, &nb_op_scale, 1, (nb_node *[]){x}, &attr);
}
