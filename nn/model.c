/* nn/model.c — Sequential models: a stack of layers with an input shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/ops.h"
#include "nn/internal.h"
#include "nn/safetensors.h"

/* ---- errors that stick to the model ---- */

void nb__model_fail(nb_model *m) {
    if (m && m->status == NB_OK) {
        m->status = NB_ERROR;
        m->error_kind = nb_last_error_kind();
        snprintf(m->error, sizeof m->error, "%s", nb_last_error());
    }
}

static nb_sym sym_fail(nb_model *m) {
    nb__model_fail(m);
    return NB_SYM_NONE;
}

nb_status nb_model_status(const nb_model *m) { return m ? m->status : NB_ERROR; }
const char *nb_model_error(const nb_model *m) { return !m ? "model is NULL" : m->error; }
nb_error_kind nb_model_error_kind(const nb_model *m) { return !m ? NB_ERR_INVALID_ARGUMENT : m->error_kind; }

/* ---- making models ---- */

static bool shape_ok(const char *who, int rank, const int *dims) {
    if (rank < 1 || rank > NB_MAX_RANK - 1 || !dims) {
        nb__set_last_error("%s: input rank %d outside [1,%d] (without the batch)", who, rank, NB_MAX_RANK - 1);
        return false;
    }
    for (int i = 0; i < rank; i++)
        if (dims[i] < 1) {
            nb__set_last_error("%s: input dimension %d is %d", who, i, dims[i]);
            return false;
        }
    return true;
}

static nb_model *model_alloc(uint64_t seed, bool sequential) {
    nb_model *m = calloc(1, sizeof *m);
    if (!m) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "model: out of memory");
        return NULL;
    }
    m->seed = seed;
    m->sequential = sequential;
    nb_rng_seed(&m->rng, seed, 0);
    return m;
}

int nb__model_node(nb_model *m, int layer, int n, const int *in, const nb_shape *shape) {
    if (m->n_nodes == m->cap_nodes) {
        int cap = m->cap_nodes ? 2 * m->cap_nodes : 8;
        nb__mnode *nodes = realloc(m->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "model: out of memory");
            return -1;
        }
        m->nodes = nodes;
        m->cap_nodes = cap;
    }
    nb__mnode *d = &m->nodes[m->n_nodes];
    memset(d, 0, sizeof *d);
    d->layer = layer;
    d->n_in = n;
    if (n) memcpy(d->in, in, (size_t)n * sizeof *in);
    d->shape = *shape;
    return m->n_nodes++;
}

static bool port_taken(const nb__mport *p, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0) return true;
    return false;
}

static int add_input(nb_model *m, const char *name, int rank, const int *dims) {
    char auto_name[NB_LAYER_NAME_MAX];
    if (!shape_ok("model input", rank, dims)) return -1;
    if (m->n_inputs == NB_MODEL_MAX_IO) {
        nb__set_last_error("model input: a model has at most %d inputs", NB_MODEL_MAX_IO);
        return -1;
    }
    if (!name || !name[0]) {
        for (int k = 0;; k++) {
            if (k) snprintf(auto_name, sizeof auto_name, "input_%d", k);
            else snprintf(auto_name, sizeof auto_name, "input");
            if (!port_taken(m->inputs, m->n_inputs, auto_name)) break;
        }
        name = auto_name;
    }
    if (strlen(name) >= NB_LAYER_NAME_MAX || !nb__utf8_valid(name, strlen(name)) ||
        port_taken(m->inputs, m->n_inputs, name)) {
        nb__set_last_error("model input: the name '%.48s' is taken, not UTF-8 or of %d bytes or more", name,
                           NB_LAYER_NAME_MAX);
        return -1;
    }
    nb_shape s = {.rank = rank};
    memcpy(s.dim, dims, (size_t)rank * sizeof(int));
    int id = nb__model_node(m, -1, 0, NULL, &s);
    if (id < 0) return -1;
    m->inputs[m->n_inputs].node = id;
    snprintf(m->inputs[m->n_inputs++].name, NB_LAYER_NAME_MAX, "%s", name);
    if (m->n_inputs == 1) {
        m->in_rank = rank;
        memcpy(m->in_dims, dims, (size_t)rank * sizeof(int));
    }
    return id;
}

nb_model *nb_model_new(int rank, const int *dims, uint64_t seed) {
    if (!shape_ok("model", rank, dims)) return NULL;
    nb_model *m = model_alloc(seed, true);
    if (m && add_input(m, "input", rank, dims) < 0) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}

nb_model *nb_model_functional(uint64_t seed) { return model_alloc(seed, false); }

void nb_model_free(nb_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) nb_layer_free(m->layers[i]);
    free(m->layers);
    free(m->nodes);
    free(m->tensors);
    free(m);
}

int nb__model_collect_tensors(nb_model *m) {
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) n += m->layers[i]->n_tensors;
    nb_tensor **t = realloc(m->tensors, (size_t)(n ? n : 1) * sizeof *t);
    if (!t) return -1;
    m->tensors = t;
    m->n_tensors = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int k = 0; k < m->layers[i]->n_tensors; k++) t[m->n_tensors++] = m->layers[i]->tensors[k];
    return 0;
}

static bool name_taken(const nb_model *m, const char *name) {
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0) return true;
    return false;
}

/* Keras's naming: the first dense is "dense", then "dense_1", "dense_2",
 * skipping names the user already gave. */
static void name_layer(const nb_model *m, nb_layer *l) {
    const char *base = l->cls->base_name;
    char name[NB_LAYER_NAME_MAX];
    int same = 0;
    for (int i = 0; i < m->n_layers; i++) same += m->layers[i]->cls == l->cls;
    for (;; same++) {
        if (same) snprintf(name, sizeof name, "%s_%d", base, same);
        else snprintf(name, sizeof name, "%s", base);
        if (!name_taken(m, name)) break;
    }
    nb__layer_rename(l, name);
}

nb_layer *nb__model_append(nb_model *m, nb_layer *l, bool named) {
    if (named && name_taken(m, l->name)) {
        nb__set_last_error("model add: a layer named '%s' already exists", l->name);
        nb_layer_free(l);
        return NULL;
    }
    if (!named) name_layer(m, l);
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 8;
        nb_layer **layers = realloc(m->layers, (size_t)cap * sizeof *layers);
        if (!layers) {
            nb_layer_free(l);
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "model add: out of memory");
            return NULL;
        }
        m->layers = layers;
        m->cap_layers = cap;
    }
    m->layers[m->n_layers++] = l;
    if (nb__model_collect_tensors(m) != 0) {
        m->n_layers--;
        nb_layer_free(l);
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "model add: out of memory");
        return NULL;
    }
    return l;
}

static int layer_index(const nb_model *m, const nb_layer *l) {
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i] == l) return i;
    return -1;
}

static bool same_shape(const nb_shape *a, const nb_shape *b) {
    return a->rank == b->rank && memcmp(a->dim, b->dim, (size_t)a->rank * sizeof(int)) == 0;
}

/* Whether l takes the shapes of nodes in[0..n); the error names both. */
static bool fits(const nb_model *m, const nb_layer *l, int n, const int *in) {
    if (n != l->n_inputs) {
        nb__set_last_error("%s '%s' takes %d input%s, given %d", l->cls->name, l->name, l->n_inputs,
                           l->n_inputs == 1 ? "" : "s", n);
        return false;
    }
    for (int k = 0; k < n; k++)
        if (!same_shape(&m->nodes[in[k]].shape, &l->in_shapes[k])) {
            char a[NB_SHAPE_STR_LEN], b[NB_SHAPE_STR_LEN];
            nb_shape_str(&l->in_shapes[k], a, sizeof a);
            nb_shape_str(&m->nodes[in[k]].shape, b, sizeof b);
            nb__set_last_error("%s '%s' takes %s%s, given %s", l->cls->name, l->name, a, n > 1 ? " there" : "", b);
            return false;
        }
    return true;
}

/* The node calling l (made for the shapes of in[0..n), or checked against
 * them) on nodes in; -1 on failure. l is m's when index >= 0; a new layer
 * (owned: freed on failure) or another model's (shared: held) when not. */
static int call(nb_model *m, nb_layer *l, int index, bool named, bool held, int n, const int *in) {
    if (index < 0) {
        if (held) l->refs++; /* nb__model_append lets go of it again on failure */
        if (!nb__model_append(m, l, named)) return -1;
        index = m->n_layers - 1;
    }
    nb_shape out = {.rank = l->out_rank};
    memcpy(out.dim, l->out_dims, sizeof out.dim);
    return nb__model_node(m, index, n, in, &out);
}

/* x[0..n) as node ids in ids, checked; false with the error set. */
static bool node_ids(const nb_model *m, int n, const nb_sym *x, int *ids, nb_shape *shapes) {
    if (n < 1 || n > NB_LAYER_MAX_INPUTS || !x) {
        nb__set_last_error("model call: %d inputs (1 to %d)", n, NB_LAYER_MAX_INPUTS);
        return false;
    }
    for (int k = 0; k < n; k++) {
        if (x[k].id < 0 || x[k].id >= m->n_nodes) {
            nb__set_last_error("model call: input %d (node %d) is not a node of this model", k, x[k].id);
            return false;
        }
        ids[k] = x[k].id;
        if (shapes) shapes[k] = m->nodes[ids[k]].shape;
    }
    return true;
}

/* The checks every functional call starts with. */
static bool can_build(nb_model *m, const char *who) {
    if (!m) {
        nb__set_last_error("%s: model is NULL", who);
        return false;
    }
    if (m->status != NB_OK) return false;
    if (m->sequential) {
        nb__set_last_error("%s: a Sequential model grows with nb_model_add", who);
        nb__model_fail(m);
        return false;
    }
    return true;
}

nb_sym nb_model_input(nb_model *m, const char *name, int rank, const int *dims) {
    if (!can_build(m, "model input")) return NB_SYM_NONE;
    int id = add_input(m, name, rank, dims);
    return id < 0 ? sym_fail(m) : (nb_sym){id};
}

nb_sym nb_model_call_class(nb_model *m, const nb_layer_class *cls, const char *name, const void *config, int n,
                           const nb_sym *x) {
    int ids[NB_LAYER_MAX_INPUTS];
    nb_shape shapes[NB_LAYER_MAX_INPUTS];
    if (!can_build(m, "model call")) return NB_SYM_NONE;
    if (!cls) {
        nb__set_last_error("model call: class is NULL");
        return sym_fail(m);
    }
    if (!node_ids(m, n, x, ids, shapes)) return sym_fail(m);
    nb_layer *l = nb__layer_make_n(cls, name, config, n, shapes, &m->rng, UINT64_MAX, NULL);
    int id = l ? call(m, l, -1, name && name[0], false, n, ids) : -1;
    return id < 0 ? sym_fail(m) : (nb_sym){id};
}

nb_sym nb_model_call(nb_model *m, nb_layer_spec spec, nb_sym x) {
    int id;
    nb_shape s;
    if (!can_build(m, "model call")) return NB_SYM_NONE;
    if (!node_ids(m, 1, &x, &id, &s)) return sym_fail(m);
    nb_layer *l = nb_layer_new(&spec, s.rank, s.dim, &m->rng);
    id = l ? call(m, l, -1, spec.name[0] != '\0', false, 1, &id) : -1;
    return id < 0 ? sym_fail(m) : (nb_sym){id};
}

nb_sym nb_model_call_layer(nb_model *m, nb_layer *l, int n, const nb_sym *x) {
    int ids[NB_LAYER_MAX_INPUTS];
    if (!can_build(m, "model call")) return NB_SYM_NONE;
    if (!l) {
        nb__set_last_error("model call: layer is NULL");
        return sym_fail(m);
    }
    if (!node_ids(m, n, x, ids, NULL) || !fits(m, l, n, ids)) return sym_fail(m);
    int id = call(m, l, layer_index(m, l), true, true, n, ids);
    return id < 0 ? sym_fail(m) : (nb_sym){id};
}

nb_sym nb_model_merge(nb_model *m, nb_layer_kind kind, int n, const nb_sym *x) {
    const nb_layer_class *cls = nb__builtin_class(kind);
    if (m && m->status == NB_OK && (!cls || cls->max_inputs < 2)) {
        nb__set_last_error("model merge: kind %d is not a merge (NB_LAYER_CONCATENATE ... NB_LAYER_AVERAGE)",
                           (int)kind);
        return sym_fail(m);
    }
    return nb_model_call_class(m, cls, NULL, NULL, n, x);
}

nb_status nb_model_output(nb_model *m, const char *name, nb_sym x) {
    if (!can_build(m, "model output")) return NB_ERROR;
    int id;
    if (!node_ids(m, 1, &x, &id, NULL)) return sym_fail(m), NB_ERROR;
    if (m->nodes[id].layer < 0) {
        nb__set_last_error("model output: node %d is an input; an output is a layer's", id);
        return sym_fail(m), NB_ERROR;
    }
    if (!name || !name[0]) name = m->layers[m->nodes[id].layer]->name;
    if (m->n_outputs == NB_MODEL_MAX_IO || strlen(name) >= NB_LAYER_NAME_MAX ||
        !nb__utf8_valid(name, strlen(name)) || port_taken(m->outputs, m->n_outputs, name)) {
        nb__set_last_error("model output: '%.48s' is taken, not UTF-8, of %d bytes or more, or past the %d "
                           "outputs a model has at most", name, NB_LAYER_NAME_MAX, NB_MODEL_MAX_IO);
        return sym_fail(m), NB_ERROR;
    }
    m->outputs[m->n_outputs].node = id;
    snprintf(m->outputs[m->n_outputs++].name, NB_LAYER_NAME_MAX, "%s", name);
    return NB_OK;
}

/* ---- Sequential models ---- */

/* The last node, for a Sequential model's next layer; -1 with the error
 * set for a functional model. */
static int tip(const nb_model *m, const char *who) {
    if (!m) {
        nb__set_last_error("%s: model is NULL", who);
        return -1;
    }
    if (!m->sequential) {
        nb__set_last_error("%s: a functional model grows with nb_model_call", who);
        return -1;
    }
    return m->n_nodes - 1;
}

/* Adds a made layer l on the tip; NULL when it fails (l is let go of). */
static nb_layer *append_on_tip(nb_model *m, nb_layer *l, bool named, bool held, int at) {
    int n_layers = m->n_layers;
    if (call(m, l, -1, named, held, 1, &at) < 0) {
        if (m->n_layers > n_layers) { /* appended, but no node: take it back */
            nb_layer_free(m->layers[--m->n_layers]);
            nb__model_collect_tensors(m);
        }
        return NULL;
    }
    return l;
}

nb_layer *nb_model_add(nb_model *m, const nb_layer_spec *spec) {
    int at = tip(m, "model add");
    if (at < 0) return NULL;
    if (!spec) {
        nb__set_last_error("model add: spec is NULL");
        return NULL;
    }
    const nb_shape *s = &m->nodes[at].shape;
    nb_layer *l = nb_layer_new(spec, s->rank, s->dim, &m->rng);
    return l ? append_on_tip(m, l, spec->name[0] != '\0', false, at) : NULL;
}

nb_layer *nb_model_add_layer(nb_model *m, const nb_layer_class *cls, const char *name, const void *config) {
    int at = tip(m, "model add");
    if (at < 0) return NULL;
    if (!cls) {
        nb__set_last_error("model add: class is NULL");
        return NULL;
    }
    nb_layer *l = nb__layer_make_n(cls, name, config, 1, &m->nodes[at].shape, &m->rng, UINT64_MAX, NULL);
    return l ? append_on_tip(m, l, name && name[0], false, at) : NULL;
}

/* A copy of l with its own tensors (same config, name, flags and bits),
 * drawing from rng as the layer it replaces would, so that a model
 * rebuilt from its seed on loading stays the same. */
static nb_layer *copy_layer(const nb_layer *l, nb_rng *rng) {
    nb_layer *k = nb__layer_make_n(l->cls, l->name, l->config, l->n_inputs, l->in_shapes, rng, UINT64_MAX, NULL);
    if (!k) return NULL;
    k->trainable = l->trainable;
    for (int t = 0; t < l->n_tensors; t++) {
        memcpy(k->tensors[t]->data, l->tensors[t]->data, l->tensors[t]->size * sizeof(float));
        k->tensors[t]->trainable = l->tensors[t]->trainable;
    }
    return k;
}

nb_layer *nb_model_add_from(nb_model *m, nb_layer *l, bool shared) {
    int at = tip(m, "model add");
    if (at < 0) return NULL;
    if (!l) {
        nb__set_last_error("model add: layer is NULL");
        return NULL;
    }
    if (shared && layer_index(m, l) >= 0) {
        nb__set_last_error("model add: layer '%s' is in the model already", l->name);
        return NULL;
    }
    if (l->n_inputs != 1 || !same_shape(&m->nodes[at].shape, &l->in_shapes[0])) {
        char a[NB_SHAPE_STR_LEN], b[NB_SHAPE_STR_LEN];
        nb_shape_str(&l->in_shapes[0], a, sizeof a);
        nb_shape_str(&m->nodes[at].shape, b, sizeof b);
        nb__set_last_error("model add: %s '%s' takes %s%s, the model's output is %s", l->cls->name, l->name, a,
                           l->n_inputs == 1 ? "" : " (and more inputs)", b);
        return NULL;
    }
    if (shared) return append_on_tip(m, l, true, true, at);
    nb_layer *k = copy_layer(l, &m->rng);
    return k ? append_on_tip(m, k, true, false, at) : NULL;
}

nb_model *nb_model_clone(const nb_model *m) {
    if (!m || m->status != NB_OK) {
        nb__set_last_error("model clone: %s", !m ? "model is NULL" : m->error);
        return NULL;
    }
    nb_model *c = model_alloc(m->seed, m->sequential);
    bool ok = c != NULL;
    for (int i = 0; ok && i < m->n_layers; i++) {
        nb_layer *k = copy_layer(m->layers[i], &c->rng);
        ok = k && nb__model_append(c, k, true);
    }
    if (ok && m->n_nodes) {
        c->nodes = malloc((size_t)m->n_nodes * sizeof *c->nodes);
        if ((ok = c->nodes != NULL)) {
            memcpy(c->nodes, m->nodes, (size_t)m->n_nodes * sizeof *c->nodes);
            c->n_nodes = c->cap_nodes = m->n_nodes;
        } else {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "model clone: out of memory");
        }
    }
    if (!ok) {
        nb_model_free(c);
        return NULL;
    }
    memcpy(c->inputs, m->inputs, sizeof c->inputs);
    memcpy(c->outputs, m->outputs, sizeof c->outputs);
    c->n_inputs = m->n_inputs, c->n_outputs = m->n_outputs;
    c->in_rank = m->in_rank;
    memcpy(c->in_dims, m->in_dims, sizeof c->in_dims);
    c->rng = m->rng; /* where m's stream is, whatever drew from it */
    return c;
}

/* ---- queries ---- */

int nb__model_output_nodes(const nb_model *m, int *nodes) {
    if (!m) return 0;
    if (m->n_outputs) {
        for (int i = 0; i < m->n_outputs; i++) nodes[i] = m->outputs[i].node;
        return m->n_outputs;
    }
    if (!m->n_nodes) return 0;
    nodes[0] = m->n_nodes - 1;
    return 1;
}

bool nb_model_is_sequential(const nb_model *m) { return m && m->sequential; }

int nb_model_sym_dims(const nb_model *m, nb_sym x, int *dims) {
    if (!m || x.id < 0 || x.id >= m->n_nodes) return 0;
    const nb_shape *s = &m->nodes[x.id].shape;
    if (dims) memcpy(dims, s->dim, (size_t)s->rank * sizeof(int));
    return s->rank;
}

int nb_model_input_count(const nb_model *m) { return m ? m->n_inputs : 0; }

const char *nb_model_input_name(const nb_model *m, int i) {
    return m && i >= 0 && i < m->n_inputs ? m->inputs[i].name : NULL;
}

int nb_model_input_dims_at(const nb_model *m, int i, int *dims) {
    if (!m || i < 0 || i >= m->n_inputs) return 0;
    return nb_model_sym_dims(m, (nb_sym){m->inputs[i].node}, dims);
}

int nb_model_output_count(const nb_model *m) {
    int nodes[NB_MODEL_MAX_IO];
    return nb__model_output_nodes(m, nodes);
}

const char *nb_model_output_name(const nb_model *m, int i) {
    int nodes[NB_MODEL_MAX_IO], n = nb__model_output_nodes(m, nodes);
    if (i < 0 || i >= n) return NULL;
    if (m->n_outputs) return m->outputs[i].name;
    const int layer = m->nodes[nodes[0]].layer;
    return layer >= 0 ? m->layers[layer]->name : m->inputs[0].name;
}

int nb_model_output_dims_at(const nb_model *m, int i, int *dims) {
    int nodes[NB_MODEL_MAX_IO], n = nb__model_output_nodes(m, nodes);
    return i >= 0 && i < n ? nb_model_sym_dims(m, (nb_sym){nodes[i]}, dims) : 0;
}

nb_layer *nb_model_output_layer(const nb_model *m, int i) {
    int nodes[NB_MODEL_MAX_IO], n = nb__model_output_nodes(m, nodes);
    if (i < 0 || i >= n || m->nodes[nodes[i]].layer < 0) return NULL;
    return m->layers[m->nodes[nodes[i]].layer];
}

nb_layer *nb_model_find_layer(const nb_model *m, const char *name) {
    for (int i = 0; m && name && i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0) return m->layers[i];
    return NULL;
}

int nb_model_layer_count(const nb_model *m) { return m ? m->n_layers : 0; }

nb_layer *nb_model_layer(const nb_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i] : NULL;
}

int nb_model_input_dims(const nb_model *m, int *dims) {
    if (!m || !m->n_inputs) return 0;
    if (dims) memcpy(dims, m->in_dims, (size_t)m->in_rank * sizeof(int));
    return m->in_rank;
}

int nb_model_output_dims(const nb_model *m, int *dims) { return nb_model_output_dims_at(m, 0, dims); }

nb_status nb_model_apply_all(nb_model *m, nb_graph *g, nb_node *const *in, nb_node **out, bool mc_dropout) {
    return nb_model_apply_traced(m, g, in, out, NULL, mc_dropout);
}

nb_status nb_model_apply_traced(nb_model *m, nb_graph *g, nb_node *const *in, nb_node **out, nb_node **layer_out,
                                bool mc_dropout) {
    if (!g || nb_graph_status(g) != NB_OK) return NB_ERROR;
    if (!m || m->status != NB_OK || !in || !out)
        return nb_graph_fail(g, "model apply: %s", !m ? "model is NULL" : m->status ? m->error : "no inputs or outputs");
    int outs[NB_MODEL_MAX_IO], n_out = nb__model_output_nodes(m, outs);
    if (!n_out) return nb_graph_fail(g, "model apply: the model has no output");
    nb_node **val = calloc((size_t)m->n_nodes, sizeof *val);
    bool *need = calloc((size_t)m->n_nodes, sizeof *need);
    if (!val || !need) {
        free(val), free(need);
        return nb_graph_fail(g, "model apply: out of memory");
    }
    /* only what the outputs need: nodes come in topological order */
    for (int k = 0; k < n_out; k++) need[outs[k]] = true;
    for (int i = m->n_nodes - 1; i >= 0; i--)
        for (int k = 0; need[i] && k < m->nodes[i].n_in; k++) need[m->nodes[i].in[k]] = true;
    for (int k = 0; k < m->n_inputs; k++) {
        if (!in[k]) {
            nb_graph_fail(g, "model apply: the node for input '%s' is NULL", m->inputs[k].name);
            break;
        }
        val[m->inputs[k].node] = in[k];
    }
    for (int i = 0; i < m->n_nodes && nb_graph_status(g) == NB_OK; i++) {
        const nb__mnode *d = &m->nodes[i];
        if (d->layer < 0 || !need[i]) continue;
        nb_node *x[NB_LAYER_MAX_INPUTS];
        for (int k = 0; k < d->n_in; k++) x[k] = val[d->in[k]];
        val[i] = nb_layer_apply_n(m->layers[d->layer], g, d->n_in, x, mc_dropout);
    }
    for (int l = 0; layer_out && l < m->n_layers; l++) layer_out[l] = NULL;
    for (int i = 0; layer_out && i < m->n_nodes; i++)
        if (m->nodes[i].layer >= 0 && !layer_out[m->nodes[i].layer]) layer_out[m->nodes[i].layer] = val[i];
    for (int k = 0; k < n_out; k++) out[k] = val[outs[k]];
    free(val);
    free(need);
    return nb_graph_status(g);
}

nb_node *nb_model_apply(nb_model *m, nb_graph *g, nb_node *x, bool mc_dropout) {
    if (!g || nb_graph_status(g) != NB_OK) return NULL;
    if (m && (m->n_inputs != 1 || nb_model_output_count(m) != 1)) {
        nb_graph_fail(g, "model apply: the model has %d inputs and %d outputs; nb_model_apply_all takes them",
                      m->n_inputs, nb_model_output_count(m));
        return NULL;
    }
    nb_node *y = NULL;
    return nb_model_apply_all(m, g, &x, &y, mc_dropout) == NB_OK ? y : NULL;
}

nb_node *nb_model_penalty(nb_model *m, nb_graph *g) {
    nb_node *total = NULL;
    for (int i = 0; m && i < m->n_layers; i++) {
        nb_node *p = nb_layer_penalty(m->layers[i], g);
        if (p) total = total ? nb_add(g, total, p) : p;
    }
    return total;
}

void nb_model_constrain(nb_model *m) {
    for (int i = 0; m && i < m->n_layers; i++) nb_layer_constrain(m->layers[i]);
}

int nb_model_tensors(const nb_model *m, nb_tensor *const **out) {
    if (!m) return 0;
    if (out) *out = m->tensors;
    return m->n_tensors;
}

void nb_model_count_params(const nb_model *m, long *trainable, long *non_trainable) {
    long t = 0, nt = 0;
    for (int i = 0; m && i < m->n_tensors; i++) {
        if (m->tensors[i]->trainable) t += (long)m->tensors[i]->size;
        else nt += (long)m->tensors[i]->size;
    }
    if (trainable) *trainable = t;
    if (non_trainable) *non_trainable = nt;
}

/* 1234567 -> "1,234,567" */
static const char *grouped(long v, char buf[32]) {
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%ld", v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0 && raw[i - 1] != '-') buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

static void shape_text(const nb_shape *s, char *buf, size_t len) {
    int used = snprintf(buf, len, "(None");
    for (int d = 0; d < s->rank && used > 0 && (size_t)used < len; d++)
        used += snprintf(buf + used, len - (size_t)used, ", %d", s->dim[d]);
    if (used > 0 && (size_t)used < len) snprintf(buf + used, len - (size_t)used, ")");
}

static long layer_params(const nb_layer *l) {
    long count = 0;
    for (int k = 0; k < l->n_tensors; k++) count += (long)l->tensors[k]->size;
    return count;
}

/* The name a node goes by in "Connected to": its input's or its layer's. */
static const char *node_name(const nb_model *m, int id) {
    if (m->nodes[id].layer >= 0) return m->layers[m->nodes[id].layer]->name;
    for (int k = 0; k < m->n_inputs; k++)
        if (m->inputs[k].node == id) return m->inputs[k].name;
    return "?";
}

static void summary_rows(const nb_model *m, FILE *out, const char *rule) {
    bool *seen = calloc((size_t)m->n_layers + 1, sizeof *seen);
    for (int i = 0; i < m->n_nodes; i++) {
        const nb__mnode *d = &m->nodes[i];
        const nb_layer *l = d->layer >= 0 ? m->layers[d->layer] : NULL;
        char name[96], shape[64], num[32], from[160] = "";
        if (l) snprintf(name, sizeof name, "%s (%s)", l->name, l->cls->name);
        else snprintf(name, sizeof name, "%s (InputLayer)", node_name(m, i));
        shape_text(&d->shape, shape, sizeof shape);
        /* a shared layer's parameters count at its first call */
        long count = l && seen && !seen[d->layer] ? layer_params(l) : 0;
        size_t used = 0;
        for (int k = 0; k < d->n_in && used < sizeof from; k++) {
            int w = snprintf(from + used, sizeof from - used, "%s%s", k ? ", " : "", node_name(m, d->in[k]));
            used += w > 0 ? (size_t)w : 0;
        }
        fprintf(out, " %-28s%-22s%-12s%s\n", name, shape, grouped(count, num), from);
        char config[512];
        if (l && seen && !seen[d->layer] && nb__config_str(l, config, sizeof config, true) > 0)
            fprintf(out, "   %s\n", config);
        if (l && seen) seen[d->layer] = true;
        if (i + 1 < m->n_nodes) fprintf(out, "%s\n", rule);
    }
    free(seen);
    fprintf(out, "Outputs:");
    for (int k = 0; k < nb_model_output_count(m); k++) {
        int dims[NB_MAX_RANK];
        nb_shape s = {.rank = nb_model_output_dims_at(m, k, dims)};
        memcpy(s.dim, dims, (size_t)s.rank * sizeof(int));
        char shape[64];
        shape_text(&s, shape, sizeof shape);
        fprintf(out, "%s %s %s", k ? "," : "", nb_model_output_name(m, k), shape);
    }
    fprintf(out, "\n");
}

void nb_model_summary(const nb_model *m, FILE *out) {
    if (!m || !out) return;
    const char *rule = "_________________________________________________________________";
    const char *dbl = "=================================================================";
    if (!m->sequential) {
        const char *wide_rule = "__________________________________________________________________________________";
        fprintf(out, "Model: \"functional\"\n%s\n", wide_rule);
        fprintf(out, " %-28s%-22s%-12s%s\n%s\n", "Layer (type)", "Output Shape", "Param #", "Connected to",
                "==================================================================================");
        summary_rows(m, out, wide_rule);
        rule = wide_rule;
        dbl = "==================================================================================";
    } else {
        fprintf(out, "Model: \"sequential\"\n%s\n", rule);
        fprintf(out, " %-28s%-26s%s\n%s\n", "Layer (type)", "Output Shape", "Param #", dbl);
        for (int i = 0; i < m->n_layers; i++) {
            const nb_layer *l = m->layers[i];
            char name[96], shape[64], num[32];
            nb_shape s = {.rank = l->out_rank};
            memcpy(s.dim, l->out_dims, sizeof s.dim);
            shape_text(&s, shape, sizeof shape);
            snprintf(name, sizeof name, "%s (%s)", l->name, l->cls->name);
            fprintf(out, " %-28s%-26s%s\n", name, shape, grouped(layer_params(l), num));
            /* what the config sets, from the class's field descriptors */
            char config[512];
            if (nb__config_str(l, config, sizeof config, true) > 0) fprintf(out, "   %s\n", config);
            if (i + 1 < m->n_layers) fprintf(out, "\n");
        }
    }
    long t, nt;
    char a[32], b[32], c[32];
    nb_model_count_params(m, &t, &nt);
    fprintf(out, "%s\nTotal params: %s\nTrainable params: %s\nNon-trainable params: %s\n%s\n", dbl,
            grouped(t + nt, a), grouped(t, b), grouped(nt, c), rule);
}
