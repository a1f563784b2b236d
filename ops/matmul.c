/* ops/matmul.c — matrix products through BLIS.
 *
 * Y = op(A)·op(B) with op(X) = X or X^T. Transposes are strides handed to
 * BLIS, never copies. BLIS is called from serial code only, with nabla's
 * thread count, so it never nests inside an OpenMP region. */
#include <blis.h>

#include "graph/internal.h"
#include "nabla/ops.h"

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

/* C = alpha·op(A)·op(B) + beta·C, row-major, with nabla's thread count. */
static void gemm(bool ta, bool tb, int m, int n, int k, const float *a, int lda, const float *b,
                 int ldb, float beta, float *c, int ldc) {
    float one = 1.0f;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nb__threads(), &rntm);
    bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 m, n, k, &one, (float *)a, lda, 1, (float *)b, ldb, 1, &beta, c, ldc, 1, NULL,
                 &rntm);
}

// a: [M,K] (or [K,M] with trans_a), b: [K,N] (or [N,K]) -> y: [M,N]
static nb_status matmul_forward(nb_graph *g, nb_node *n) {
    (void)g;
    const nb_node *a = n->in[0], *b = n->in[1];
    int m = n->shape.dim[0], nn = n->shape.dim[1];
    int k = TRANS_A(n) ? a->shape.dim[0] : a->shape.dim[1];
    if (m == 0 || nn == 0) return NB_OK;
    if (k == 0) {
        for (size_t i = 0; i < n->size; i++) n->value[i] = 0.0f;
        return NB_OK;
    }
    gemm(TRANS_A(n), TRANS_B(n), m, nn, k, a->value, a->shape.dim[1], b->value, b->shape.dim[1],
         0.0f, n->value, nn);
    return NB_OK;
}

/* With Y = A'B' (A' = op(A), B' = op(B)): dA' = dY·B'^T and dB' = A'^T·dY;
 * a transposed operand takes the transpose of its gradient, which is again a
 * product with swapped, transposed operands. */
static void matmul_backward(nb_graph *g, nb_node *n) {
    (void)g;
    nb_node *a = n->in[0], *b = n->in[1];
    bool ta = TRANS_A(n), tb = TRANS_B(n);
    int m = n->shape.dim[0], nn = n->shape.dim[1];
    int k = ta ? a->shape.dim[0] : a->shape.dim[1];
    int lda = a->shape.dim[1], ldb = b->shape.dim[1];
    const float *dy = n->grad;
    if (m == 0 || nn == 0 || k == 0) return;
    if (a->grad) {
        if (!ta) /* dA [M,K] = dY [M,N] · op(B)^T */
            gemm(false, !tb, m, k, nn, dy, nn, b->value, ldb, 1.0f, a->grad, lda);
        else     /* dA [K,M] = op(B) [K,N] · dY^T */
            gemm(tb, true, k, m, nn, b->value, ldb, dy, nn, 1.0f, a->grad, lda);
    }
    if (b->grad) {
        if (!tb) /* dB [K,N] = op(A)^T · dY */
            gemm(!ta, false, k, nn, m, a->value, lda, dy, nn, 1.0f, b->grad, ldb);
        else     /* dB [N,K] = dY^T · op(A) */
            gemm(true, ta, nn, k, m, dy, nn, a->value, lda, 1.0f, b->grad, ldb);
    }
}

const nb_op nb_op_matmul = {
    .name = "matmul", .infer = matmul_infer, .forward = matmul_forward, .backward = matmul_backward,
};

nb_node *nb_matmul_t(nb_graph *g, nb_node *a, nb_node *b, bool trans_a, bool trans_b) {
    nb_attr attr = {.i = {trans_a, trans_b}};
    return nb__op_node(g, &nb_op_matmul, 2, (nb_node *[]){a, b}, &attr);
}

nb_node *nb_matmul(nb_graph *g, nb_node *a, nb_node *b) { return nb_matmul_t(g, a, b, false, false); }
