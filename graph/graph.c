/* graph/graph.c — building graphs: nodes, leaves, errors and accessors.
 * Running them (planning, forward, backward) is in graph/run.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

static nb_status fail_v(nb_graph *g, nb_error_kind kind, const char *fmt, va_list ap) {
    if (!g) return NB_ERROR;
    if (g->status == NB_OK) {
        vsnprintf(g->error, sizeof g->error, fmt, ap);
        g->status = NB_ERROR;
        g->error_kind = kind;
    }
    return NB_ERROR;
}

nb_status nb_graph_fail(nb_graph *g, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(g, NB_ERR_INVALID_ARGUMENT, fmt, ap);
    va_end(ap);
    return NB_ERROR;
}

nb_status nb__fail_kind(nb_graph *g, nb_error_kind kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(g, kind, fmt, ap);
    va_end(ap);
    return NB_ERROR;
}

nb_graph *nb_graph_new(void) {
    nb__runtime_init();
    nb_graph *g = calloc(1, sizeof *g);
    if (!g) nb__set_error(NB_ERR_OUT_OF_MEMORY, "graph: out of memory");
    return g;
}

static void node_free(nb_node *n) {
    free(n->in);
    free(n);
}

void nb_graph_free(nb_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) node_free(g->nodes[i]);
    for (int i = 0; i < g->n_owned; i++) nb_tensor_free(g->owned[i]);
    free(g->nodes);
    free(g->owned);
    free(g->arena);
    free(g);
}

nb_status nb_graph_status(const nb_graph *g) { return g ? g->status : NB_ERROR; }

const char *nb_graph_error(const nb_graph *g) {
    return g ? g->error : "graph is NULL";
}

nb_error_kind nb_graph_error_kind(const nb_graph *g) {
    if (!g) return NB_ERR_INVALID_ARGUMENT;
    return g->status == NB_OK ? NB_ERR_NONE : g->error_kind;
}

void nb_graph_set_row_offset(nb_graph *g, uint64_t rows) {
    if (g) g->row_offset = rows;
}

void nb_graph_set_sync(nb_graph *g, nb_graph_sync *sync) {
    if (g) g->sync = sync;
}

void nb_graph_set_seed(nb_graph *g, uint64_t seed) {
    if (!g) return;
    g->seed = seed;
    g->step = 0;
}

void nb_graph_check_finite(nb_graph *g, bool on) {
    if (g) g->check_finite = on;
}

char *nb__shape(const nb_node *n, char buf[NB_SHAPE_STR_LEN]) {
    return nb_shape_str(&n->shape, buf, NB_SHAPE_STR_LEN);
}

void nb__set_shape(nb_node *n, int rank, const int *dims) {
    n->shape.rank = rank;
    for (int i = 0; i < NB_MAX_RANK; i++) n->shape.dim[i] = i < rank ? dims[i] : 0;
    n->size = nb_shape_size(&n->shape);
}

/* Appends a fresh node; adding nodes after the first run re-plans the arena. */
static nb_node *node_add(nb_graph *g, nb_kind kind, const nb_op *op, const char *what) {
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        nb_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            nb__fail_kind(g, NB_ERR_OUT_OF_MEMORY, "%s: out of memory adding a node", what);
            return NULL;
        }
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    nb_node *n = calloc(1, sizeof *n);
    if (!n) {
        nb__fail_kind(g, NB_ERR_OUT_OF_MEMORY, "%s: out of memory adding a node", what);
        return NULL;
    }
    n->graph = g;
    n->kind = kind;
    n->op = op;
    n->id = g->n_nodes;
    snprintf(n->name, sizeof n->name, "%s#%d", what, n->id);
    g->nodes[g->n_nodes++] = n;
    g->planned = false;
    return n;
}

/* Removes the last node again (its construction failed). */
static void node_drop_last(nb_graph *g) {
    node_free(g->nodes[--g->n_nodes]);
}

nb_node *nb__op_node(nb_graph *g, const nb_op *op, int n_in, nb_node *const *in,
                     const nb_attr *attr) {
    if (!g || g->status != NB_OK) return NULL;
    if (n_in < 1 || !in) {
        nb__fail(g, "%s: needs at least one input, got %d", op->name, n_in);
        return NULL;
    }
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) {
            nb__fail(g, "%s: input %d is NULL", op->name, i);
            return NULL;
        }
        if (in[i]->graph != g) {
            nb__fail(g, "%s: input %d ('%s') belongs to another graph", op->name, i,
                     in[i]->name);
            return NULL;
        }
    }
    nb_node *n = node_add(g, NB_KIND_OP, op, op->name);
    if (!n) return NULL;
    n->in = malloc((size_t)n_in * sizeof *n->in);
    if (!n->in) {
        node_drop_last(g);
        nb__fail_kind(g, NB_ERR_OUT_OF_MEMORY, "%s: out of memory", op->name);
        return NULL;
    }
    memcpy(n->in, in, (size_t)n_in * sizeof *n->in);
    n->n_in = n_in;
    if (attr) n->attr = *attr;
    if (op->infer(g, n) != NB_OK) {
        node_drop_last(g);
        if (g->status == NB_OK) nb__fail(g, "%s: shape inference failed", op->name);
        return NULL;
    }
    n->capacity = n->size;
    n->aux_capacity = op->aux ? op->aux(n) : 0;
    return n;
}

static bool dims_ok(nb_graph *g, const char *what, int rank, const int *dims, int min_rank) {
    if (rank < min_rank || rank > NB_MAX_RANK) {
        nb__fail(g, "%s: rank %d outside [%d,%d]", what, rank, min_rank, NB_MAX_RANK);
        return false;
    }
    if (rank > 0 && !dims) {
        nb__fail(g, "%s: dims is NULL", what);
        return false;
    }
    for (int i = 0; i < rank; i++)
        if (dims[i] < 1) {
            nb__fail(g, "%s: dimension %d is %d, must be >= 1", what, i, dims[i]);
            return false;
        }
    size_t n;
    if (!nb__dims_size(rank, dims, &n)) {
        nb__fail_kind(g, NB_ERR_UNSUPPORTED, "%s: more than 2^40 elements", what);
        return false;
    }
    return true;
}

nb_node *nb_input(nb_graph *g, const char *name, int rank, const int *dims) {
    if (!g || g->status != NB_OK) return NULL;
    if (!dims_ok(g, "input", rank, dims, 1)) return NULL;
    nb_node *n = node_add(g, NB_KIND_INPUT, NULL, "input");
    if (!n) return NULL;
    nb__set_shape(n, rank, dims);
    n->capacity = n->size;
    n->max_batch = dims[0];
    if (name) snprintf(n->name, sizeof n->name, "%s", name);
    return n;
}

static nb_node *leaf_tensor(nb_graph *g, nb_tensor *t, nb_kind kind, const char *what) {
    if (!g || g->status != NB_OK) return NULL;
    if (!t || !t->data) {
        nb__fail(g, "%s: tensor is NULL", what);
        return NULL;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->tensor == t && g->nodes[i]->kind == kind) return g->nodes[i];
    if (kind == NB_KIND_PARAM && t->trainable && nb__tensor_ensure_grad(t) != 0) {
        nb__fail_kind(g, NB_ERR_OUT_OF_MEMORY, "%s: out of memory for the gradient of '%s'", what,
                      t->name);
        return NULL;
    }
    nb_node *n = node_add(g, kind, NULL, what);
    if (!n) return NULL;
    n->tensor = t;
    n->shape = t->shape;
    n->size = n->capacity = t->size;
    n->value = t->data;
    if (t->name[0]) snprintf(n->name, sizeof n->name, "%s", t->name);
    return n;
}

nb_node *nb_param(nb_graph *g, nb_tensor *t) { return leaf_tensor(g, t, NB_KIND_PARAM, "param"); }

nb_node *nb_constant(nb_graph *g, nb_tensor *t) {
    return leaf_tensor(g, t, NB_KIND_CONST, "constant");
}

nb_node *nb_scalar(nb_graph *g, float v) {
    if (!g || g->status != NB_OK) return NULL;
    if (g->n_owned == g->cap_owned) {
        int cap = g->cap_owned ? 2 * g->cap_owned : 8;
        nb_tensor **owned = realloc(g->owned, (size_t)cap * sizeof *owned);
        if (!owned) {
            nb__fail_kind(g, NB_ERR_OUT_OF_MEMORY, "scalar: out of memory");
            return NULL;
        }
        g->owned = owned;
        g->cap_owned = cap;
    }
    nb_tensor *t = nb_tensor_new(0, NULL);
    if (!t) {
        nb__fail_kind(g, NB_ERR_OUT_OF_MEMORY, "scalar: out of memory");
        return NULL;
    }
    t->data[0] = v;
    t->trainable = false;
    g->owned[g->n_owned++] = t;
    return nb_constant(g, t);
}

const float *nb_node_value(const nb_node *n) { return n ? n->value : NULL; }
const float *nb_node_grad(const nb_node *n) { return n ? n->grad : NULL; }

nb_shape nb_node_shape(const nb_node *n) {
    nb_shape s = {0};
    return n ? n->shape : s;
}

size_t nb_node_size(const nb_node *n) { return n ? n->size : 0; }
const char *nb_node_name(const nb_node *n) { return n ? n->name : ""; }

void nb_node_set_name(nb_node *n, const char *name) {
    if (n) snprintf(n->name, sizeof n->name, "%s", name ? name : "");
}

const char *nb_node_op(const nb_node *n) {
    if (!n) return "";
    switch (n->kind) {
    case NB_KIND_INPUT: return "input";
    case NB_KIND_PARAM: return "param";
    case NB_KIND_CONST: return "constant";
    default: return n->op->name;
    }
}

nb_tensor *nb_node_tensor(const nb_node *n) { return n ? n->tensor : NULL; }

nb_status nb_node_set_stochastic(nb_node *n, bool on) {
    if (!n) return NB_ERROR;
    nb_graph *g = n->graph;
    if (g->status != NB_OK) return NB_ERROR;
    if (n->kind != NB_KIND_OP || !n->op->random)
        return nb__fail(g, "set_stochastic: node '%s' (op %s) draws no random numbers",
                        n->name, nb_node_op(n));
    n->stochastic = on;
    return NB_OK;
}

nb_status nb_node_force_inference(nb_node *n, bool on) {
    if (!n) return NB_ERROR;
    if (n->graph->status != NB_OK) return NB_ERROR;
    n->force_inference = on;
    return NB_OK;
}

bool nb__node_training(const nb_graph *g, const nb_node *n) {
    return g->mode == NB_TRAINING && !n->force_inference;
}

bool nb__random_active(const nb_graph *g, const nb_node *n) {
    return nb__node_training(g, n) || n->stochastic;
}

int nb_graph_node_count(const nb_graph *g) { return g ? g->n_nodes : 0; }

nb_node *nb_graph_node(const nb_graph *g, int i) {
    return g && i >= 0 && i < g->n_nodes ? g->nodes[i] : NULL;
}

size_t nb_graph_arena_bytes(const nb_graph *g) { return g ? g->arena_bytes : 0; }
