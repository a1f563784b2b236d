/* ops/matmul.c — matrix products through BLIS.
 *
 * Y = op(A)·op(B) with op(X) = X or X^T. Transposes are strides, never
 * copies: the packing of ops/gemm.c reads any strides. */
#include "graph/internal.h"
#include "nabla/ops.h"
#include "ops/gemm.h"

#define TRANS_A(n) ((n)->attr.i[0])
#define TRANS_B(n) ((n)->attr.i[1])

static nb_status matmul_infer(nb_graph *g, nb_node *n) {
    const nb_node *a = n->in[0], *b = n->in[1];
    char sa[NB_SHAPE_STR_LEN], sb[NB_SHAPE_STR_LEN];
    if (a->shape.rank != 2 || b->shape.rank != 2)
        return nb__fail(g, "matmul: needs two matrices, got %s x %s", nb__shape(a, sa), nb__shape(b, sb));
    int m = TRANS_A(n) ? a->shape.dim[1] : a->shape.dim[0];
    int ka = TRANS_A(n) ? a->shape.dim[0] : a->shape.dim[1];
    int kb = TRANS_B(n) ? b->shape.dim[1] : b->shape.dim[0];
    int nn = TRANS_B(n) ? b->shape.dim[0] : b->shape.dim[1];
    if (ka != kb)
        return nb__fail(g, "matmul: inner dimensions differ: %s%s x %s%s", nb__shape(a, sa),
                        TRANS_A(n) ? "^T" : "", nb__shape(b, sb), TRANS_B(n) ? "^T" : "");
    nb__set_shape(n, 2, (int[]){m, nn});
    return NB_OK;
}

/* A row-major matrix with leading dimension ld, seen transposed or not:
 * element (i,j) of the view is at i*rs + j*cs. */
typedef struct { const float *p; ptrdiff_t rs, cs; } view;

static view as_view(const float *p, int ld, bool trans) {
    return trans ? (view){p, 1, ld} : (view){p, ld, 1};
}

static view transposed(view v) { return (view){v.p, v.cs, v.rs}; }

/* Workspaces start on 64-byte boundaries (16 floats). */
static size_t aligned(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* C += or = X·Y, where C is a view of c (beta 0 or 1), with workspace
 * work: alone (nt 0: nb__sgemm, which opens a parallel region of its own
 * when the product is worth it), or as thread tid of the graph's team of
 * nt threads (see graph/run.c). */
static void product(int m, int n, int k, view x, view y, float beta, float *c, view cv, float *work, int tid,
                    int nt) {
    if (nt == 0)
        nb__sgemm((size_t)m, (size_t)n, (size_t)k, 1.0f, x.p, x.rs, x.cs, y.p, y.rs, y.cs, beta, c, cv.rs, cv.cs,
                  work);
    else
        nb__sgemm_team((size_t)m, (size_t)n, (size_t)k, 1.0f, x.p, x.rs, x.cs, y.p, y.rs, y.cs, beta, c, cv.rs,
                       cv.cs, work, tid, nt);
}

/* Overwrite input k's gradient (beta 0) when this is its first writer. */
static float beta_of(const nb_node *n, int k) { return n->assign >> k & 1u ? 0.0f : 1.0f; }

/* Backward with both gradients gives each of two threads of a team one
 * whole product (dA' and dB' take the same multiply-adds), which needs no
 * barrier inside; not when the two gradients are one buffer (x·x^T). */
static bool both_grads(const nb_node *n) {
    return n->in[0]->grad && n->in[1]->grad && n->in[0]->grad != n->in[1]->grad;
}

// a: [M,K] (or [K,M] with trans_a), b: [K,N] (or [N,K]) -> y: [M,N]
static void forward_share(nb_graph *g, nb_node *n, int tid, int nt) {
    const nb_node *a = n->in[0], *b = n->in[1];
    int m = n->shape.dim[0], nn = n->shape.dim[1];
    int k = TRANS_A(n) ? a->shape.dim[0] : a->shape.dim[1];
    product(m, nn, k, as_view(a->value, a->shape.dim[1], TRANS_A(n)), as_view(b->value, b->shape.dim[1], TRANS_B(n)),
            0.0f, n->value, as_view(NULL, nn, false), g->scratch, tid, nt);
}

/* With Y = A'B' (A' = op(A), B' = op(B)): dA' = dY·B'^T and dB' = A'^T·dY.
 * Writing dA' through the same transposed view as A' puts a transposed
 * operand's gradient where it belongs, with no copy. */
static void backward_share(nb_graph *g, nb_node *n, int tid, int nt) {
    nb_node *a = n->in[0], *b = n->in[1];
    int m = n->shape.dim[0], nn = n->shape.dim[1];
    int k = TRANS_A(n) ? a->shape.dim[0] : a->shape.dim[1];
    int lda = a->shape.dim[1], ldb = b->shape.dim[1];
    view dy = as_view(n->grad, nn, false);
    view av = as_view(a->value, lda, TRANS_A(n)), bv = as_view(b->value, ldb, TRANS_B(n));
    view ca = as_view(NULL, lda, TRANS_A(n)), cb = as_view(NULL, ldb, TRANS_B(n));
    if (nt == 2 && both_grads(n)) { /* each thread one product, alone; dB's workspace follows dA's */
        if (tid == 0)
            product(m, k, nn, dy, transposed(bv), beta_of(n, 0), a->grad, ca, g->scratch, 0, 0);
        else
            product(k, nn, m, transposed(av), dy, beta_of(n, 1), b->grad, cb,
                    g->scratch + aligned(nb__gemm_workspace((size_t)m, (size_t)k, (size_t)nn)), 0, 0);
        return;
    }
    if (a->grad) /* dA' [M,K] = dY [M,N] · B'^T [N,K] */
        product(m, k, nn, dy, transposed(bv), beta_of(n, 0), a->grad, ca, g->scratch, tid, nt);
    if (b->grad) /* dB' [K,N] = A'^T [K,M] · dY [M,N] */
        product(k, nn, m, transposed(av), dy, beta_of(n, 1), b->grad, cb, g->scratch, tid, nt);
}

static nb_status matmul_forward(nb_graph *g, nb_node *n) {
    forward_share(g, n, 0, 0);
    return NB_OK;
}

static void matmul_backward(nb_graph *g, nb_node *n) { backward_share(g, n, 0, 0); }

/* ---- shared by the graph's team (small batches, see graph/run.c) ---- */

static double macs(const nb_node *n) {
    const nb_node *a = n->in[0];
    int k = TRANS_A(n) ? a->shape.dim[0] : a->shape.dim[1];
    return (double)n->shape.dim[0] * (double)n->shape.dim[1] * (double)k;
}

static bool matmul_shares(const nb_node *n, bool backward) {
    return macs(n) >= (backward && both_grads(n) ? NB_TEAM_SPLIT_MIN / 2 : NB_TEAM_SPLIT_MIN);
}

static void matmul_forward_team(nb_graph *g, nb_node *n, int tid, int nt) { forward_share(g, n, tid, nt); }

static void matmul_backward_team(nb_graph *g, nb_node *n, int tid, int nt) { backward_share(g, n, tid, nt); }

/* The largest of the three products' workspaces, or dA's and dB's side by
 * side when two threads run them at once. */
static size_t matmul_scratch(const nb_node *n) {
    const nb_node *a = n->in[0];
    size_t m = (size_t)n->shape.dim[0], nn = (size_t)n->shape.dim[1];
    size_t k = (size_t)(TRANS_A(n) ? a->shape.dim[0] : a->shape.dim[1]);
    size_t f = nb__gemm_workspace(m, nn, k), da = nb__gemm_workspace(m, k, nn),
           db = nb__gemm_workspace(k, nn, m);
    size_t both = aligned(da) + db;
    return f > both ? f : both;
}

const nb_op nb_op_matmul = {
    .name = "matmul", .infer = matmul_infer, .forward = matmul_forward, .backward = matmul_backward,
    .scratch = matmul_scratch, .assigns = true, .shares = matmul_shares, .forward_team = matmul_forward_team,
    .backward_team = matmul_backward_team,
};

nb_node *nb_matmul_t(nb_graph *g, nb_node *a, nb_node *b, bool trans_a, bool trans_b) {
    nb_attr attr = {.i = {trans_a, trans_b}};
    return nb__op_node(g, &nb_op_matmul, 2, (nb_node *[]){a, b}, &attr);
}

nb_node *nb_matmul(nb_graph *g, nb_node *a, nb_node *b) { return nb_matmul_t(g, a, b, false, false); }
