/* nn/layer_normalization.c — Keras's Normalization: per feature,
 * y = (x − mean) / max(sqrt(variance), 1e-7), the statistics set with
 * nb_layer_set_normalization and saved with the model. */
#include <math.h>

#include "graph/internal.h"
#include "nabla/ops.h"
#include "nn/internal.h"

static nb_status build(nb_layer *l, nb_rng *rng) {
    (void)rng;
    const int f = l->in_dims[l->in_rank - 1];
    nb_tensor *var;
    if (!nb_layer_add_tensor(l, "mean", 1, &f, false) || !(var = nb_layer_add_tensor(l, "variance", 1, &f, false)) ||
        !nb__layer_scratch(l, 1, &f))
        return NB_ERROR;
    for (int i = 0; i < f; i++) var->data[i] = 1.0f; /* the identity until statistics are set */
    l->scratch->trainable = false;
    return NB_OK;
}

static nb_node *apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    (void)mc_dropout;
    nb_tensor *mean = nb_layer_find_tensor(l, "mean"), *var = nb_layer_find_tensor(l, "variance");
    /* read when applied: statistics set or loaded later count */
    for (size_t i = 0; i < var->size; i++) {
        float sd = sqrtf(var->data[i]);
        l->scratch->data[i] = 1.0f / (sd > 1e-7f ? sd : 1e-7f);
    }
    return nb_mul(g, nb_sub(g, x, nb_constant(g, mean)), nb_constant(g, l->scratch));
}

const nb_layer_class nb__normalization_class = {
    .name = "Normalization", .base_name = "normalization", .config_size = 0, .build = build, .apply = apply,
};

nb_status nb_layer_set_normalization(nb_layer *l, const float *mean, const float *std) {
    if (!l || l->cls != &nb__normalization_class || !mean || !std) {
        nb__set_last_error("set_normalization: %s", !l || l->cls != &nb__normalization_class
                                                        ? "not a Normalization layer"
                                                        : "mean or std is NULL");
        return NB_ERROR;
    }
    nb_tensor *m = nb_layer_find_tensor(l, "mean"), *v = nb_layer_find_tensor(l, "variance");
    for (size_t i = 0; i < m->size; i++)
        if (!isfinite(mean[i]) || !isfinite(std[i]) || std[i] < 0) {
            nb__set_last_error("set_normalization: feature %zu has mean %g, std %g", i, (double)mean[i],
                               (double)std[i]);
            return NB_ERROR;
        }
    for (size_t i = 0; i < m->size; i++) {
        m->data[i] = mean[i];
        v->data[i] = std[i] > 0 ? std[i] * std[i] : 1.0f;
    }
    return NB_OK;
}
