/* nn/activation.c — activations by name: the built-in ones, and any
 * function or elementwise custom op registered under a name. */
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/ops.h"
#include "nn/internal.h"

#define NAME_MAX_BYTES 64

static nb_node *relu(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_relu(g, x); }
static nb_node *leaky(nb_graph *g, nb_node *x, float a, void *u) { (void)u; return nb_leaky_relu(g, x, a != 0 ? a : 0.2f); }
static nb_node *rrelu(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_rrelu(g, x, 1.0f / 8, 1.0f / 3); }
static nb_node *elu(nb_graph *g, nb_node *x, float a, void *u) { (void)u; return nb_elu(g, x, a != 0 ? a : 1.0f); }
static nb_node *selu(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_selu(g, x); }
static nb_node *gelu(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_gelu(g, x); }
static nb_node *gelu_tanh(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_gelu_tanh(g, x); }
static nb_node *swish(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_swish(g, x); }
static nb_node *tanh_(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_tanh(g, x); }
static nb_node *sigmoid(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_sigmoid(g, x); }
static nb_node *softplus(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_softplus(g, x); }
static nb_node *softmax(nb_graph *g, nb_node *x, float a, void *u) { (void)a, (void)u; return nb_softmax(g, x); }

typedef struct activation {
    char name[NAME_MAX_BYTES];
    nb_activation_fn fn;    /* NULL for prelu (it needs the layer's tensor) and custom ops */
    void *user;
    const nb_custom_op *op; /* an elementwise custom op, or NULL */
    const nb_elementwise_op *ew; /* an elementwise function (the fast path), or NULL */
} activation;

/* prelu has no function: nb_layer_activate applies it with the layer's slopes */
static const activation builtin[] = {
    {"relu", relu, NULL, NULL, NULL},       {"leaky_relu", leaky, NULL, NULL, NULL},
    {"prelu", NULL, NULL, NULL, NULL},      {"rrelu", rrelu, NULL, NULL, NULL},
    {"elu", elu, NULL, NULL, NULL},         {"selu", selu, NULL, NULL, NULL},
    {"gelu", gelu, NULL, NULL, NULL},       {"gelu_tanh", gelu_tanh, NULL, NULL, NULL},
    {"swish", swish, NULL, NULL, NULL},     {"tanh", tanh_, NULL, NULL, NULL},
    {"sigmoid", sigmoid, NULL, NULL, NULL}, {"softplus", softplus, NULL, NULL, NULL},
    {"softmax", softmax, NULL, NULL, NULL},
};

static activation *registered;
static int n_registered, cap_registered;

static bool identity(const char *name) { return !name || !name[0] || strcmp(name, "linear") == 0; }

static const activation *find(const char *name) {
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i].name, name) == 0) return &builtin[i];
    for (int i = 0; i < n_registered; i++)
        if (strcmp(registered[i].name, name) == 0) return &registered[i];
    return NULL;
}

bool nb_activation_known(const char *name) { return identity(name) || find(name) != NULL; }

static nb_status add(const char *name, nb_activation_fn fn, void *user, const nb_custom_op *op,
                     const nb_elementwise_op *ew) {
    if (!name || !name[0] || strlen(name) >= NAME_MAX_BYTES || (!fn && !op && !ew)) {
        nb__set_last_error("activation register: %s", !name || !name[0] ? "no name"
                                                       : strlen(name) >= NAME_MAX_BYTES ? "the name is 64 bytes or more"
                                                                                        : "no function");
        return NB_ERROR;
    }
    if (nb_activation_known(name)) {
        nb__set_last_error("activation register: '%s' is already an activation", name);
        return NB_ERROR;
    }
    if (n_registered == cap_registered) {
        int cap = cap_registered ? 2 * cap_registered : 8;
        activation *r = realloc(registered, (size_t)cap * sizeof *r);
        if (!r) {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "activation register: out of memory");
            return NB_ERROR;
        }
        registered = r;
        cap_registered = cap;
    }
    activation *a = &registered[n_registered++];
    memset(a, 0, sizeof *a);
    strcpy(a->name, name);
    a->fn = fn;
    a->user = user;
    a->op = op;
    a->ew = ew;
    return NB_OK;
}

nb_status nb_activation_register(const char *name, nb_activation_fn fn, void *user) {
    return add(name, fn, user, NULL, NULL);
}

nb_status nb_activation_register_custom(const nb_custom_op *op) {
    if (!op || !op->shape || !op->forward || !op->backward) {
        nb__set_last_error("activation register: %s", !op ? "op is NULL" : "the op lacks a callback");
        return NB_ERROR;
    }
    return add(op->name, NULL, NULL, op, NULL);
}

nb_status nb_activation_register_elementwise(const nb_elementwise_op *op, void *user) {
    if (!op || !op->f || !op->df) {
        nb__set_last_error("activation register: %s", !op ? "op is NULL" : "the op lacks f or df");
        return NB_ERROR;
    }
    return add(op->name, NULL, user, NULL, op);
}

nb_status nb_layer_add_activation_tensors(nb_layer *l, const char *name) {
    if (!l || !name || strcmp(name, "prelu") != 0) return NB_OK;
    /* a PReLU learns one slope per output feature, starting at 0 as in Keras */
    return nb_layer_add_tensor(l, "alpha", 1, &l->out_dims[l->out_rank - 1], true) ? NB_OK : NB_ERROR;
}

nb_node *nb_layer_activate(nb_layer *l, nb_graph *g, nb_node *x, const char *name, float alpha) {
    if (!g || nb_graph_status(g) != NB_OK) return NULL;
    if (identity(name)) return x;
    const activation *a = find(name);
    const char *layer = l ? l->name : "(no layer)";
    if (!a) {
        nb_graph_fail(g, "layer '%s': activation '%s' is not registered", layer, name);
        return NULL;
    }
    if (a->op) return nb_custom(g, a->op, 1, &x, NULL);
    if (a->ew) return nb_elementwise(g, a->ew, x, a->user);
    if (a->fn) return a->fn(g, x, alpha, a->user);
    nb_tensor *slopes = nb_layer_find_tensor(l, "alpha");
    if (!slopes) {
        nb_graph_fail(g, "layer '%s': prelu needs an \"alpha\" tensor (nb_layer_add_activation_tensors)", layer);
        return NULL;
    }
    return nb_prelu(g, x, nb_param(g, slopes));
}
