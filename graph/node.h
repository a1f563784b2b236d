/* graph/node.h — the inside of graphs and nodes, shared by graph/ and ops/.
 * Not installed: users see only the opaque types of nabla/graph.h. */
#ifndef NABLA_GRAPH_NODE_H
#define NABLA_GRAPH_NODE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph/pace.h"
#include "nabla/graph.h"

typedef enum nb_kind { NB_KIND_INPUT, NB_KIND_PARAM, NB_KIND_CONST, NB_KIND_OP } nb_kind;

/* Per-op constants given at construction. */
typedef struct nb_attr {
    float f[4];
    int i[4];
    void *p[2];
} nb_attr;

/* One entry of the op table (ops/optable.c). Every op's file defines one.
 *
 * infer:    sets n->shape from the inputs' current shapes and n->attr, or
 *           reports a shape error with nb__fail and returns NB_ERROR. Runs at
 *           construction (largest batch) and again whenever the batch changes.
 * aux:      floats of per-node scratch the op keeps from forward to backward
 *           (a dropout mask, batch statistics), for the node's current shape;
 *           NULL for none. Planned at the largest batch.
 * forward:  computes n->value from the inputs' values. May fail at run time
 *           (bad labels) through nb__fail.
 * backward: adds the gradient of each input to in[i]->grad, skipping inputs
 *           whose grad is NULL (they need none). n->grad holds dL/dn.
 * scratch:  floats of workspace the op needs only while its forward or
 *           backward runs (packed matrices), for the node's current shape;
 *           one region shared by every node, planned at the largest batch.
 * view:     the node's value and gradient are its first input's (reshape);
 *           forward and backward are then NULL.
 * random:   the op draws random numbers (may be made stochastic in inference).
 * assigns:  backward honours n->assign: for each input k whose bit is set it
 *           writes in[k]->grad instead of adding to it (the graph then
 *           skips zeroing that buffer before the pass).
 * shares:   optional; whether the node's forward (backward = false) or
 *           backward pass is worth sharing among a team of threads at its
 *           current shape. When it says so and the graph runs its passes
 *           in one parallel region (small batches, see graph/run.c),
 *           forward_team / backward_team are called by every thread of the
 *           team with its tid of nt, instead of forward / backward on one;
 *           they may meet at nb__team_sync() (graph/barrier.h), which all
 *           threads must reach.
 *           Results must not depend on nt. */
typedef struct nb_op {
    const char *name;
    nb_status (*infer)(nb_graph *g, nb_node *n);
    size_t (*aux)(const nb_node *n);
    nb_status (*forward)(nb_graph *g, nb_node *n);
    void (*backward)(nb_graph *g, nb_node *n);
    size_t (*scratch)(const nb_node *n);
    bool view;
    bool random;
    bool assigns;
    bool (*shares)(const nb_node *n, bool backward);
    void (*forward_team)(nb_graph *g, nb_node *n, int tid, int nt);
    void (*backward_team)(nb_graph *g, nb_node *n, int tid, int nt);
} nb_op;

struct nb_node {
    nb_graph *graph;
    const nb_op *op;      /* NULL for leaves */
    nb_kind kind;
    int id;
    int n_in;
    nb_node **in;
    nb_attr attr;
    nb_shape shape;       /* current shape */
    size_t size;          /* current element count */
    size_t capacity;      /* elements planned in the arena (largest batch) */
    size_t aux_capacity;
    float *value;
    float *grad;          /* NULL: no gradient is computed for this node */
    float *grad_buf;      /* the arena's gradient buffer, when it has one */
    float *aux;
    nb_tensor *tensor;    /* parameters and constants */
    int max_batch;        /* inputs: declared batch */
    int fed_batch;        /* inputs: batch of the last feed, 0 if never fed */
    bool stochastic;      /* random in inference too (MC dropout) */
    bool force_inference; /* runs as in inference in training passes too (frozen) */
    bool live;            /* scratch for backward planning */
    bool need;            /* backward planning: gets a gradient (live, leads to a trainable parameter) */
    bool claimed;         /* backward planning: the first writer overwrites grad */
    bool written;         /* backward planning: the first writer is known */
    bool aliased;         /* backward planning: a view shares grad */
    unsigned assign;      /* bit k: backward overwrites in[k]->grad, its first
                             writer, rather than adding to it (nb_op.assigns) */
    nb_node *ready;       /* backward planning, with a grad-ready hook: the first of
                             the parameters whose gradient this op's backward completes */
    nb_node *ready_next;  /* parameters: the next one the same op completes */
    int ready_at;         /* parameters: the id of that op (-1: none yet) */
    char name[64];
};

struct nb_graph {
    nb_status status;
    nb_error_kind error_kind;
    char error[256];
    nb_node **nodes;
    int n_nodes, cap_nodes;
    void *arena;
    size_t arena_bytes;
    float *scratch;       /* shared op workspace (nb_op.scratch), in the arena */
    size_t scratch_capacity;
    bool planned;
    bool check_finite;
    nb_mode mode;         /* mode of the current/last forward pass */
    uint64_t seed;
    uint64_t step;        /* forward passes run so far: the random stream's counter */
    nb_graph_sync *sync;  /* batch statistics summed over processes, or NULL */
    uint64_t row_offset;  /* rows before this batch's, for random ops' keys */
    nb_grad_ready_fn grad_ready; /* called as backward completes each gradient, or NULL */
    void *grad_ready_user;
    nb_node *ready_last;  /* backward planning: parameters no op writes (graph/run.c) */
    int batch;            /* batch of the last forward pass */
    bool team;            /* at this batch, passes run in one parallel region (graph/run.c) */
    nb_pace pace[2];      /* thread counts of training and inference steps (graph/pace.h) */
    int threads;          /* the count of the last forward pass, which backward takes */
    nb_tensor **owned;    /* tensors the graph made itself (nb_scalar) */
    int n_owned, cap_owned;
};

/* Puts g in error with a printf-style message (the first error wins) and
 * returns NB_ERROR: nb_graph_fail, under the short name the ops use. The
 * kind is NB_ERR_INVALID_ARGUMENT: a shape or an argument that does not fit. */
#define nb__fail nb_graph_fail

/* nb__fail with the error's kind stated: out of memory for a node or the
 * arena, a non-finite value caught by the finiteness check, a size beyond
 * nabla's limits. */
nb_status nb__fail_kind(nb_graph *g, nb_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Adds an op node after checking g and the inputs (NULL, foreign graph)
 * and running op->infer. Returns NULL on error. */
nb_node *nb__op_node(nb_graph *g, const nb_op *op, int n_in, nb_node *const *in,
                     const nb_attr *attr);

/* "[32,784]" for the node's current shape, in a buffer the caller gives. */
#define NB_SHAPE_STR_LEN 64
char *nb__shape(const nb_node *n, char buf[NB_SHAPE_STR_LEN]);

/* Sets n->shape (and n->size) from a rank and dims. */
void nb__set_shape(nb_node *n, int rank, const int *dims);

/* True if n runs as in training in the current pass: a training pass, and
 * n not forced to inference. */
bool nb__node_training(const nb_graph *g, const nb_node *n);

/* True if n should draw random numbers now: it runs as in training, or it
 * was made stochastic. */
bool nb__random_active(const nb_graph *g, const nb_node *n);

/* The op table, in ops/optable.c: every built-in op, for lookup by name. */
extern const nb_op *const nb__op_table[];
extern const int nb__op_table_len;
const nb_op *nb__op_by_name(const char *name);

#endif
