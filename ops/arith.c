/* ops/arith.c — elementwise add, sub, mul, div with broadcasting, and scale.
 *
 * One operand may be smaller than the other: its shape is the trailing
 * dimensions of the larger one (a bias [F] against [B,F]) or it has a single
 * element. The output is then seen as rows of the smaller operand's size,
 * and the smaller operand's gradient is the sum of the rows' gradients. */
#include "graph/internal.h"
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

/* Broadcast operands accumulate over rows, so their loops stay serial: each
 * of their elements is written by many output elements. */
static void binary_backward(nb_graph *g, nb_node *n) {
    (void)g;
    nb_node *an = n->in[0], *bn = n->in[1];
    const float *a = an->value, *b = bn->value, *y = n->value, *dy = n->grad;
    float *da = an->grad, *db = bn->grad;
    size_t na = an->size, nb = bn->size, nn = n->size;
    int op = n->attr.i[0];
    if (da) {
        switch (op) {
        case OP_ADD:
        case OP_SUB: BROADCAST_LOOP(nn, na, nb, da[ia] += dy[i]); break;
        case OP_MUL: BROADCAST_LOOP(nn, na, nb, da[ia] += dy[i] * b[ib]); break;
        default:     BROADCAST_LOOP(nn, na, nb, da[ia] += dy[i] / b[ib]); break;
        }
    }
    if (db) {
        switch (op) {
        case OP_ADD: BROADCAST_LOOP(nn, na, nb, db[ib] += dy[i]); break;
        case OP_SUB: BROADCAST_LOOP(nn, na, nb, db[ib] -= dy[i]); break;
        case OP_MUL: BROADCAST_LOOP(nn, na, nb, db[ib] += dy[i] * a[ia]); break;
        default:     BROADCAST_LOOP(nn, na, nb, db[ib] -= dy[i] * y[i] / b[ib]); break;
        }
    }
}

const nb_op nb_op_add = {.name = "add", .infer = binary_infer, .forward = binary_forward, .backward = binary_backward};
const nb_op nb_op_sub = {.name = "sub", .infer = binary_infer, .forward = binary_forward, .backward = binary_backward};
const nb_op nb_op_mul = {.name = "mul", .infer = binary_infer, .forward = binary_forward, .backward = binary_backward};
const nb_op nb_op_div = {.name = "div", .infer = binary_infer, .forward = binary_forward, .backward = binary_backward};

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
