/* nn/layer.c — layers: specs, tensors, and how each adds its ops to a graph. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/init.h"
#include "nabla/ops.h"
#include "nn/internal.h"

static const struct {
    nb_layer_kind kind;
    const char *cls, *base;
} kinds[] = {
    {NB_LAYER_DENSE, "Dense", "dense"},
    {NB_LAYER_BATCH_NORM, "BatchNormalization", "batch_normalization"},
    {NB_LAYER_LAYER_NORM, "LayerNormalization", "layer_normalization"},
    {NB_LAYER_DROPOUT, "Dropout", "dropout"},
    {NB_LAYER_ALPHA_DROPOUT, "AlphaDropout", "alpha_dropout"},
    {NB_LAYER_ACTIVATION, "Activation", "activation"},
    {NB_LAYER_FLATTEN, "Flatten", "flatten"},
    {NB_LAYER_NORMALIZATION, "Normalization", "normalization"},
};

static bool kind_known(nb_layer_kind k) { return (unsigned)k < sizeof kinds / sizeof kinds[0]; }
const char *nb__layer_class(nb_layer_kind k) { return kind_known(k) ? kinds[k].cls : "?"; }
const char *nb__layer_base_name(nb_layer_kind k) { return kind_known(k) ? kinds[k].base : "layer"; }

/* ---- specs ---- */

static void copy_name(char *dst, size_t len, const char *src) { snprintf(dst, len, "%s", src ? src : ""); }

nb_layer_spec nb_dense_spec(int units, const char *activation, const char *kernel_init) {
    nb_layer_spec s = {.kind = NB_LAYER_DENSE, .units = units};
    copy_name(s.activation, sizeof s.activation, activation);
    copy_name(s.kernel_init, sizeof s.kernel_init, kernel_init);
    return s;
}

nb_layer_spec nb_batch_norm_spec(void) { return (nb_layer_spec){.kind = NB_LAYER_BATCH_NORM}; }
nb_layer_spec nb_dropout_spec(float rate) { return (nb_layer_spec){.kind = NB_LAYER_DROPOUT, .rate = rate}; }

nb_layer_spec nb_alpha_dropout_spec(float rate) {
    return (nb_layer_spec){.kind = NB_LAYER_ALPHA_DROPOUT, .rate = rate};
}

nb_layer_spec nb_activation_spec(const char *activation) {
    nb_layer_spec s = {.kind = NB_LAYER_ACTIVATION};
    copy_name(s.activation, sizeof s.activation, activation);
    return s;
}

static const char *const activations[] = {"", "linear", "relu", "leaky_relu", "prelu", "rrelu",
                                          "elu", "selu", "gelu", "swish", "tanh", "sigmoid",
                                          "softplus", "softmax"};

static bool activation_known(const char *name) {
    for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++)
        if (strcmp(name, activations[i]) == 0) return true;
    return false;
}

static bool has_activation(const nb_layer_spec *s) {
    return s->activation[0] && strcmp(s->activation, "linear") != 0;
}

/* ---- construction ---- */

static nb_tensor *add_tensor(nb_layer *l, nb_tensor **role, int rank, const int *dims, bool trainable) {
    nb_tensor *t = nb_tensor_new(rank, dims);
    if (!t) return NULL;
    t->trainable = trainable;
    *role = t;
    l->tensors[l->n_tensors++] = t;
    return t;
}

void nb__layer_name_tensors(nb_layer *l) {
    static const char *roles[] = {"kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance",
                                  "alpha", "mean", "variance"};
    nb_tensor *by_role[] = {l->kernel, l->bias, l->gamma, l->beta, l->moving_mean, l->moving_var,
                            l->alpha, l->mean, l->variance};
    for (int r = 0; r < 9; r++)
        if (by_role[r]) snprintf(by_role[r]->name, sizeof by_role[r]->name, "%s/%s", l->spec.name, roles[r]);
}

static size_t dims_size(int rank, const int *dims) {
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    return n;
}

static bool spec_ok(const nb_layer_spec *s, int rank) {
    if (!kind_known(s->kind)) {
        nb__set_last_error("layer: unknown kind %d", (int)s->kind);
        return false;
    }
    const char *cls = nb__layer_class(s->kind);
    if ((s->kind == NB_LAYER_DENSE || s->kind == NB_LAYER_ACTIVATION) && !activation_known(s->activation)) {
        nb__set_last_error("%s: unknown activation '%s'", cls, s->activation);
        return false;
    }
    switch (s->kind) {
    case NB_LAYER_DENSE: {
        nb_init init;
        if (s->units < 1) {
            nb__set_last_error("Dense: units is %d, must be >= 1", s->units);
            return false;
        }
        if (rank != 1) {
            nb__set_last_error("Dense: input has %d feature dimensions, it needs 1 (add a Flatten first)", rank);
            return false;
        }
        if (s->kernel_init[0] && !nb_init_parse(s->kernel_init, &init)) {
            nb__set_last_error("Dense: unknown initializer '%s'", s->kernel_init);
            return false;
        }
        if (!(s->kernel_reg.l1 >= 0 && s->kernel_reg.l2 >= 0 && isfinite(s->kernel_reg.l1) &&
              isfinite(s->kernel_reg.l2))) {
            nb__set_last_error("Dense: regularization factors must be finite and >= 0, got l1 %g l2 %g",
                               (double)s->kernel_reg.l1, (double)s->kernel_reg.l2);
            return false;
        }
        if (!(s->max_norm >= 0 && isfinite(s->max_norm))) {
            nb__set_last_error("Dense: max_norm must be finite and >= 0, got %g", (double)s->max_norm);
            return false;
        }
        if (s->max_norm_axis != 0 && s->max_norm_axis != 1) {
            nb__set_last_error("Dense: max_norm_axis is %d, must be 0 or 1", s->max_norm_axis);
            return false;
        }
        break;
    }
    case NB_LAYER_DROPOUT:
    case NB_LAYER_ALPHA_DROPOUT:
        if (!(s->rate >= 0 && s->rate < 1)) {
            nb__set_last_error("%s: rate %g outside [0,1)", cls, (double)s->rate);
            return false;
        }
        break;
    case NB_LAYER_BATCH_NORM:
    case NB_LAYER_LAYER_NORM:
        if (!(s->momentum >= 0 && s->momentum <= 1) || !(s->epsilon >= 0 && isfinite(s->epsilon))) {
            nb__set_last_error("%s: momentum %g or epsilon %g out of range", cls, (double)s->momentum,
                               (double)s->epsilon);
            return false;
        }
        break;
    default:
        break;
    }
    if (!(isfinite(s->alpha))) {
        nb__set_last_error("%s: alpha %g is not finite", cls, (double)s->alpha);
        return false;
    }
    return true;
}

nb_layer *nb_layer_new(const nb_layer_spec *spec, int rank, const int *in_dims, nb_rng *rng) {
    if (!spec || !rng || (rank > 0 && !in_dims)) {
        nb__set_last_error("layer: spec, input dims or rng is NULL");
        return NULL;
    }
    if (rank < 1 || rank > NB_MAX_RANK - 1) {
        nb__set_last_error("%s: input rank %d outside [1,%d] (without the batch)",
                           nb__layer_class(spec->kind), rank, NB_MAX_RANK - 1);
        return NULL;
    }
    for (int i = 0; i < rank; i++)
        if (in_dims[i] < 1) {
            nb__set_last_error("%s: input dimension %d is %d", nb__layer_class(spec->kind), i, in_dims[i]);
            return NULL;
        }
    if (!spec_ok(spec, rank)) return NULL;
    nb_layer *l = calloc(1, sizeof *l);
    if (!l) {
        nb__set_last_error("layer: out of memory");
        return NULL;
    }
    l->spec = *spec;
    l->spec.name[sizeof l->spec.name - 1] = '\0';
    l->spec.activation[sizeof l->spec.activation - 1] = '\0';
    l->spec.kernel_init[sizeof l->spec.kernel_init - 1] = '\0';
    if (!l->spec.name[0]) copy_name(l->spec.name, sizeof l->spec.name, nb__layer_base_name(spec->kind));
    l->trainable = true;
    l->in_rank = l->out_rank = rank;
    memcpy(l->in_dims, in_dims, (size_t)rank * sizeof(int));
    memcpy(l->out_dims, in_dims, (size_t)rank * sizeof(int));
    const int features = in_dims[rank - 1];
    bool ok = true;
    switch (spec->kind) {
    case NB_LAYER_DENSE: {
        nb_init init;
        nb_init_parse(spec->kernel_init[0] ? spec->kernel_init : "glorot_uniform", &init);
        l->out_dims[0] = spec->units;
        ok = add_tensor(l, &l->kernel, 2, (int[]){features, spec->units}, true) &&
             nb_init_fill(l->kernel, &init, features, spec->units, rng) == NB_OK;
        if (ok && !spec->no_bias) ok = add_tensor(l, &l->bias, 1, (int[]){spec->units}, true) != NULL;
        break;
    }
    case NB_LAYER_BATCH_NORM:
        if (!spec->no_scale) ok = ok && add_tensor(l, &l->gamma, 1, &features, true);
        if (!spec->no_center) ok = ok && add_tensor(l, &l->beta, 1, &features, true);
        ok = ok && add_tensor(l, &l->moving_mean, 1, &features, false) &&
             add_tensor(l, &l->moving_var, 1, &features, false);
        if (ok) {
            if (l->gamma)
                for (int i = 0; i < features; i++) l->gamma->data[i] = 1.0f;
            for (int i = 0; i < features; i++) l->moving_var->data[i] = 1.0f;
        }
        break;
    case NB_LAYER_LAYER_NORM:
        if (!spec->no_scale) ok = ok && add_tensor(l, &l->gamma, 1, &features, true);
        if (!spec->no_center) ok = ok && add_tensor(l, &l->beta, 1, &features, true);
        if (ok && l->gamma)
            for (int i = 0; i < features; i++) l->gamma->data[i] = 1.0f;
        break;
    case NB_LAYER_FLATTEN:
        l->out_rank = 1;
        l->out_dims[0] = (int)dims_size(rank, in_dims);
        break;
    case NB_LAYER_NORMALIZATION: /* identity until statistics are set */
        ok = add_tensor(l, &l->mean, 1, &features, false) && add_tensor(l, &l->variance, 1, &features, false);
        if (ok) {
            l->inv_std = nb_tensor_new(1, &features);
            ok = l->inv_std != NULL;
        }
        if (ok)
            for (int i = 0; i < features; i++) l->variance->data[i] = 1.0f;
        break;
    default:
        break;
    }
    /* a PReLU learns one slope per output feature, starting at 0 as in Keras */
    if (ok && strcmp(spec->activation, "prelu") == 0)
        ok = add_tensor(l, &l->alpha, 1, &l->out_dims[l->out_rank - 1], true) != NULL;
    if (!ok) {
        nb_layer_free(l);
        nb__set_last_error("%s: out of memory for its tensors", nb__layer_class(spec->kind));
        return NULL;
    }
    nb__layer_name_tensors(l);
    return l;
}

void nb_layer_free(nb_layer *l) {
    if (!l) return;
    nb_tensor_free(l->inv_std);
    for (int i = 0; i < l->n_tensors; i++) nb_tensor_free(l->tensors[i]);
    free(l);
}

/* ---- applying ---- */

static nb_node *activate(nb_layer *l, nb_graph *g, nb_node *x) {
    const char *a = l->spec.activation;
    float alpha = l->spec.alpha;
    if (!has_activation(&l->spec)) return x;
    if (!strcmp(a, "relu")) return nb_relu(g, x);
    if (!strcmp(a, "leaky_relu")) return nb_leaky_relu(g, x, alpha != 0 ? alpha : 0.2f);
    if (!strcmp(a, "prelu")) return nb_prelu(g, x, nb_param(g, l->alpha));
    if (!strcmp(a, "rrelu")) return nb_rrelu(g, x, 1.0f / 8, 1.0f / 3);
    if (!strcmp(a, "elu")) return nb_elu(g, x, alpha != 0 ? alpha : 1.0f);
    if (!strcmp(a, "selu")) return nb_selu(g, x);
    if (!strcmp(a, "gelu")) return nb_gelu(g, x);
    if (!strcmp(a, "swish")) return nb_swish(g, x);
    if (!strcmp(a, "tanh")) return nb_tanh(g, x);
    if (!strcmp(a, "sigmoid")) return nb_sigmoid(g, x);
    if (!strcmp(a, "softplus")) return nb_softplus(g, x);
    return nb_softmax(g, x); /* the only name left: spec_ok checked it */
}

nb_node *nb_layer_apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    if (!g || nb_graph_status(g) != NB_OK) return NULL;
    if (!l || !x) {
        nb_graph_fail(g, "layer apply: %s is NULL", l ? "input" : "layer");
        return NULL;
    }
    /* the input must have the shape the layer was made for, after the batch */
    nb_shape s = nb_node_shape(x);
    bool fits = s.rank == l->in_rank + 1;
    for (int i = 0; fits && i < l->in_rank; i++) fits = s.dim[i + 1] == l->in_dims[i];
    if (!fits) {
        char got[NB_SHAPE_STR_LEN], want[NB_SHAPE_STR_LEN];
        nb_shape w = {.rank = l->in_rank + 1, .dim = {-1}};
        for (int i = 0; i < l->in_rank; i++) w.dim[i + 1] = l->in_dims[i];
        nb_shape_str(&s, got, sizeof got);
        nb_shape_str(&w, want, sizeof want);
        nb_graph_fail(g, "%s '%s': input %s does not fit, expected %s (-1 is the batch)",
                 nb__layer_class(l->spec.kind), l->spec.name, got, want);
        return NULL;
    }
    nb_node *y = NULL;
    switch (l->spec.kind) {
    case NB_LAYER_DENSE:
        y = nb_matmul(g, x, nb_param(g, l->kernel));
        if (l->bias) y = nb_add(g, y, nb_param(g, l->bias));
        return activate(l, g, y);
    case NB_LAYER_BATCH_NORM:
        y = nb_batchnorm(g, x, l->gamma ? nb_param(g, l->gamma) : NULL, l->beta ? nb_param(g, l->beta) : NULL,
                         l->moving_mean, l->moving_var, l->spec.momentum != 0 ? l->spec.momentum : 0.99f,
                         l->spec.epsilon != 0 ? l->spec.epsilon : 1e-3f);
        /* Keras runs a frozen batch normalization in inference mode, so
         * fine-tuning above it does not move its statistics */
        if (y && !l->trainable) nb_node_force_inference(y, true);
        return y;
    case NB_LAYER_LAYER_NORM:
        return nb_layernorm(g, x, l->gamma ? nb_param(g, l->gamma) : NULL,
                            l->beta ? nb_param(g, l->beta) : NULL, l->spec.epsilon != 0 ? l->spec.epsilon : 1e-3f);
    case NB_LAYER_DROPOUT:
    case NB_LAYER_ALPHA_DROPOUT:
        if (l->spec.rate == 0) return x;
        y = l->spec.kind == NB_LAYER_DROPOUT ? nb_dropout(g, x, l->spec.rate) : nb_alpha_dropout(g, x, l->spec.rate);
        if (y && mc_dropout) nb_node_set_stochastic(y, true);
        return y;
    case NB_LAYER_ACTIVATION:
        return activate(l, g, x);
    case NB_LAYER_FLATTEN:
        return nb_flatten(g, x);
    case NB_LAYER_NORMALIZATION: {
        /* Keras: (x - mean) / max(sqrt(variance), 1e-7) */
        for (size_t i = 0; i < l->variance->size; i++) {
            float sd = sqrtf(l->variance->data[i]);
            l->inv_std->data[i] = 1.0f / (sd > 1e-7f ? sd : 1e-7f);
        }
        l->inv_std->trainable = false;
        return nb_mul(g, nb_sub(g, x, nb_constant(g, l->mean)), nb_constant(g, l->inv_std));
    }
    }
    return NULL;
}

nb_status nb_layer_set_normalization(nb_layer *l, const float *mean, const float *std) {
    if (!l || l->spec.kind != NB_LAYER_NORMALIZATION || !mean || !std) {
        nb__set_last_error("set_normalization: %s", !l || l->spec.kind != NB_LAYER_NORMALIZATION
                                                        ? "not a Normalization layer"
                                                        : "mean or std is NULL");
        return NB_ERROR;
    }
    for (size_t i = 0; i < l->mean->size; i++)
        if (!isfinite(mean[i]) || !isfinite(std[i]) || std[i] < 0) {
            nb__set_last_error("set_normalization: feature %zu has mean %g, std %g", i, (double)mean[i],
                               (double)std[i]);
            return NB_ERROR;
        }
    for (size_t i = 0; i < l->mean->size; i++) {
        l->mean->data[i] = mean[i];
        l->variance->data[i] = std[i] > 0 ? std[i] * std[i] : 1.0f;
    }
    return NB_OK;
}

/* ---- queries, freezing, penalties, constraints ---- */

const nb_layer_spec *nb_layer_spec_of(const nb_layer *l) { return l ? &l->spec : NULL; }
const char *nb_layer_name(const nb_layer *l) { return l ? l->spec.name : ""; }

int nb_layer_output_dims(const nb_layer *l, int *dims) {
    if (!l) return 0;
    if (dims) memcpy(dims, l->out_dims, (size_t)l->out_rank * sizeof(int));
    return l->out_rank;
}

int nb_layer_tensor_count(const nb_layer *l) { return l ? l->n_tensors : 0; }

nb_tensor *nb_layer_tensor(const nb_layer *l, int i) {
    return l && i >= 0 && i < l->n_tensors ? l->tensors[i] : NULL;
}

void nb_layer_set_trainable(nb_layer *l, bool trainable) {
    if (!l) return;
    l->trainable = trainable;
    for (int i = 0; i < l->n_tensors; i++)
        if (l->tensors[i] != l->moving_mean && l->tensors[i] != l->moving_var && l->tensors[i] != l->mean &&
            l->tensors[i] != l->variance)
            l->tensors[i]->trainable = trainable;
}

bool nb_layer_trainable(const nb_layer *l) { return l && l->trainable; }

nb_node *nb_layer_penalty(nb_layer *l, nb_graph *g) {
    if (!l || !l->kernel) return NULL;
    nb_regularizer r = l->spec.kernel_reg;
    nb_node *p = NULL, *w = NULL;
    if (r.l1 > 0 || r.l2 > 0) w = nb_param(g, l->kernel);
    if (r.l1 > 0) p = nb_scale(g, nb_l1_norm(g, w), r.l1);
    if (r.l2 > 0) {
        nb_node *q = nb_scale(g, nb_sum_squares(g, w), r.l2);
        p = p ? nb_add(g, p, q) : q;
    }
    return p;
}

// kernel: [in, units]; axis 0: each column (a unit's incoming weights) to
// norm <= r; axis 1: each row (an input's outgoing weights)
void nb_layer_constrain(nb_layer *l) {
    if (!l || !l->kernel || l->spec.max_norm <= 0 || !l->kernel->trainable) return;
    const size_t rows = (size_t)l->kernel->shape.dim[0], cols = (size_t)l->kernel->shape.dim[1];
    const bool by_column = l->spec.max_norm_axis == 0;
    /* vector v has n elements spaced by stride, starting at v·step */
    const size_t vectors = by_column ? cols : rows, n = by_column ? rows : cols;
    const size_t stride = by_column ? cols : 1, step = by_column ? 1 : cols;
    const double r = l->spec.max_norm;
    float *w = l->kernel->data;
    for (size_t v = 0; v < vectors; v++) {
        float *x = w + v * step;
        double sq = 0;
        for (size_t i = 0; i < n; i++) sq += (double)x[i * stride] * x[i * stride];
        double norm = sqrt(sq);
        if (norm > r) {
            float k = (float)(r / norm);
            for (size_t i = 0; i < n; i++) x[i * stride] *= k;
        }
    }
}
