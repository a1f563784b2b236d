/* ops/elementwise.c — user-defined elementwise functions (nabla/custom.h's
 * nb_elementwise): f and f' over arrays, run in contiguous blocks on
 * nabla's threads, in the pass's team at small batches, so that a custom
 * activation is as parallel as a built-in one. */
#include <stdio.h>

#include "graph/internal.h"
#include "nabla/custom.h"
#include "ops/common.h"

#define DEF(n) ((const nb_elementwise_op *)(n)->attr.p[0])
#define USER(n) ((n)->attr.p[1])

/* Thread tid of nt's share of [0, n): whole 16-float vectors but the last. */
static void share(size_t n, int tid, int nt, size_t *lo, size_t *hi) {
    const size_t vecs = (n + 15) / 16;
    *lo = vecs * (size_t)tid / (size_t)nt * 16;
    *hi = vecs * (size_t)(tid + 1) / (size_t)nt * 16;
    if (*hi > n) *hi = n;
    if (*lo > n) *lo = n;
}

static void forward_range(const nb_node *n, size_t lo, size_t hi) {
    if (hi > lo) DEF(n)->f(hi - lo, n->in[0]->value + lo, n->value + lo, USER(n));
}

static void backward_range(const nb_node *n, size_t lo, size_t hi) {
    const nb_node *x = n->in[0];
    if (hi > lo) DEF(n)->df(hi - lo, x->value + lo, n->value + lo, n->grad + lo, x->grad + lo, USER(n));
}

static nb_status ew_forward(nb_graph *g, nb_node *n) {
    (void)g;
    NB_PARALLEL_RANGE(lo, hi, n->size, forward_range(n, lo, hi));
    return NB_OK;
}

static void ew_backward(nb_graph *g, nb_node *n) {
    (void)g;
    if (!n->in[0]->grad) return;
    NB_PARALLEL_RANGE(lo, hi, n->size, backward_range(n, lo, hi));
}

/* Worth a team's threads from the size a parallel loop is. */
static bool ew_shares(const nb_node *n, bool backward) {
    return n->size >= NB_PAR_MIN / 4 && (!backward || n->in[0]->grad);
}

static void ew_forward_team(nb_graph *g, nb_node *n, int tid, int nt) {
    (void)g;
    size_t lo, hi;
    share(n->size, tid, nt, &lo, &hi);
    forward_range(n, lo, hi);
}

static void ew_backward_team(nb_graph *g, nb_node *n, int tid, int nt) {
    (void)g;
    size_t lo, hi;
    share(n->size, tid, nt, &lo, &hi);
    backward_range(n, lo, hi);
}

const nb_op nb_op_elementwise = {
    .name = "elementwise", .infer = nb__infer_like_input, .forward = ew_forward, .backward = ew_backward,
    .shares = ew_shares, .forward_team = ew_forward_team, .backward_team = ew_backward_team,
};

nb_node *nb_elementwise(nb_graph *g, const nb_elementwise_op *op, nb_node *x, void *user) {
    if (!g || g->status != NB_OK) return NULL;
    if (!op || !op->f || !op->df) {
        nb__fail(g, "elementwise: op%s%s is NULL or lacks f or df", op && op->name ? " " : "",
                 op && op->name ? op->name : "");
        return NULL;
    }
    nb_attr attr = {.p = {(void *)op, user}};
    nb_node *node = nb__op_node(g, &nb_op_elementwise, 1, &x, &attr);
    if (node && op->name) snprintf(node->name, sizeof node->name, "%s#%d", op->name, node->id);
    return node;
}

/* cloned for AVX-512 and AVX2: the default build's SSE2 exp was 7 times slower */
NB_KERNEL_CLONES void nb_vexp(size_t n, const float *x, float *y) { /* in place too: no restrict */
    for (size_t i = 0; i < n; i++) y[i] = nb__exp(x[i]);
}
