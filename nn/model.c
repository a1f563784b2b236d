/* nn/model.c — Sequential models: a stack of layers with an input shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/ops.h"
#include "nn/internal.h"

nb_model *nb_model_new(int rank, const int *dims, uint64_t seed) {
    if (rank < 1 || rank > NB_MAX_RANK - 1 || !dims) {
        nb__set_last_error("model: input rank %d outside [1,%d] (without the batch)", rank, NB_MAX_RANK - 1);
        return NULL;
    }
    for (int i = 0; i < rank; i++)
        if (dims[i] < 1) {
            nb__set_last_error("model: input dimension %d is %d", i, dims[i]);
            return NULL;
        }
    nb_model *m = calloc(1, sizeof *m);
    if (!m) {
        nb__set_last_error("model: out of memory");
        return NULL;
    }
    m->in_rank = rank;
    memcpy(m->in_dims, dims, (size_t)rank * sizeof(int));
    m->seed = seed;
    nb_rng_seed(&m->rng, seed, 0);
    return m;
}

void nb_model_free(nb_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) nb_layer_free(m->layers[i]);
    free(m->layers);
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
            nb__set_last_error("model add: out of memory");
            return NULL;
        }
        m->layers = layers;
        m->cap_layers = cap;
    }
    m->layers[m->n_layers++] = l;
    if (nb__model_collect_tensors(m) != 0) {
        m->n_layers--;
        nb_layer_free(l);
        nb__set_last_error("model add: out of memory");
        return NULL;
    }
    return l;
}

nb_layer *nb_model_add(nb_model *m, const nb_layer_spec *spec) {
    if (!m || !spec) {
        nb__set_last_error("model add: model or spec is NULL");
        return NULL;
    }
    int dims[NB_MAX_RANK];
    int rank = nb_model_output_dims(m, dims);
    nb_layer *l = nb_layer_new(spec, rank, dims, &m->rng);
    return l ? nb__model_append(m, l, spec->name[0] != '\0') : NULL;
}

nb_layer *nb_model_add_layer(nb_model *m, const nb_layer_class *cls, const char *name, const void *config) {
    if (!m || !cls) {
        nb__set_last_error("model add: model or class is NULL");
        return NULL;
    }
    int dims[NB_MAX_RANK];
    int rank = nb_model_output_dims(m, dims);
    nb_layer *l = nb_layer_new_from_config(cls, name, config, rank, dims, &m->rng);
    return l ? nb__model_append(m, l, name && name[0]) : NULL;
}

nb_layer *nb_model_add_from(nb_model *m, nb_layer *l, bool shared) {
    if (!m || !l) {
        nb__set_last_error("model add: model or layer is NULL");
        return NULL;
    }
    for (int i = 0; shared && i < m->n_layers; i++)
        if (m->layers[i] == l) {
            nb__set_last_error("model add: layer '%s' is in the model already", l->name);
            return NULL;
        }
    int dims[NB_MAX_RANK];
    int rank = nb_model_output_dims(m, dims);
    bool fits = rank == l->in_rank && memcmp(dims, l->in_dims, (size_t)rank * sizeof(int)) == 0;
    if (!fits) {
        nb_shape have = {.rank = rank}, want = {.rank = l->in_rank};
        memcpy(have.dim, dims, (size_t)rank * sizeof(int));
        memcpy(want.dim, l->in_dims, (size_t)l->in_rank * sizeof(int));
        char a[NB_SHAPE_STR_LEN], b[NB_SHAPE_STR_LEN];
        nb_shape_str(&want, a, sizeof a);
        nb_shape_str(&have, b, sizeof b);
        nb__set_last_error("model add: %s '%s' takes %s, the model's output is %s", l->cls->name, l->name, a, b);
        return NULL;
    }
    if (shared) {
        l->refs++; /* nb__model_append lets go of it again on failure */
        return nb__model_append(m, l, true);
    }
    /* a copy draws from m's stream as the layer it replaces would, so a
     * model rebuilt from its seed on loading stays the same */
    nb_layer *k = nb__layer_make(l->cls, l->name, l->config, l->in_rank, l->in_dims, &m->rng, UINT64_MAX, NULL);
    if (!k) return NULL;
    k->trainable = l->trainable;
    for (int t = 0; t < l->n_tensors; t++) {
        memcpy(k->tensors[t]->data, l->tensors[t]->data, l->tensors[t]->size * sizeof(float));
        k->tensors[t]->trainable = l->tensors[t]->trainable;
    }
    return nb__model_append(m, k, true);
}

nb_model *nb_model_clone(const nb_model *m) {
    if (!m) {
        nb__set_last_error("model clone: model is NULL");
        return NULL;
    }
    nb_model *c = nb_model_new(m->in_rank, m->in_dims, m->seed);
    for (int i = 0; c && i < m->n_layers; i++)
        if (!nb_model_add_from(c, m->layers[i], false)) {
            nb_model_free(c);
            return NULL;
        }
    if (c) c->rng = m->rng; /* where m's stream is, whatever drew from it */
    return c;
}

int nb_model_layer_count(const nb_model *m) { return m ? m->n_layers : 0; }

nb_layer *nb_model_layer(const nb_model *m, int i) {
    return m && i >= 0 && i < m->n_layers ? m->layers[i] : NULL;
}

int nb_model_input_dims(const nb_model *m, int *dims) {
    if (!m) return 0;
    if (dims) memcpy(dims, m->in_dims, (size_t)m->in_rank * sizeof(int));
    return m->in_rank;
}

int nb_model_output_dims(const nb_model *m, int *dims) {
    if (!m) return 0;
    if (m->n_layers) return nb_layer_output_dims(m->layers[m->n_layers - 1], dims);
    return nb_model_input_dims(m, dims);
}

nb_node *nb_model_apply(nb_model *m, nb_graph *g, nb_node *x, bool mc_dropout) {
    if (!m) {
        nb_graph_fail(g, "model apply: model is NULL");
        return NULL;
    }
    for (int i = 0; i < m->n_layers && x; i++) x = nb_layer_apply(m->layers[i], g, x, mc_dropout);
    return x;
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

void nb_model_summary(const nb_model *m, FILE *out) {
    if (!m || !out) return;
    const char *rule = "_________________________________________________________________";
    const char *dbl = "=================================================================";
    fprintf(out, "Model: \"sequential\"\n%s\n", rule);
    fprintf(out, " %-28s%-26s%s\n%s\n", "Layer (type)", "Output Shape", "Param #", dbl);
    for (int i = 0; i < m->n_layers; i++) {
        const nb_layer *l = m->layers[i];
        char name[96], shape[64], num[32];
        long count = 0;
        int used = snprintf(shape, sizeof shape, "(None");
        for (int d = 0; d < l->out_rank; d++) used += snprintf(shape + used, sizeof shape - (size_t)used, ", %d", l->out_dims[d]);
        snprintf(shape + used, sizeof shape - (size_t)used, ")");
        snprintf(name, sizeof name, "%s (%s)", l->name, l->cls->name);
        for (int k = 0; k < l->n_tensors; k++) count += (long)l->tensors[k]->size;
        fprintf(out, " %-28s%-26s%s\n", name, shape, grouped(count, num));
        /* what the config sets, from the class's field descriptors */
        char config[512];
        if (nb__config_str(l, config, sizeof config, true) > 0) fprintf(out, "   %s\n", config);
        if (i + 1 < m->n_layers) fprintf(out, "\n");
    }
    long t, nt;
    char a[32], b[32], c[32];
    nb_model_count_params(m, &t, &nt);
    fprintf(out, "%s\nTotal params: %s\nTrainable params: %s\nNon-trainable params: %s\n%s\n", dbl,
            grouped(t + nt, a), grouped(t, b), grouped(nt, c), rule);
}
