/* nn/layer_layernorm.c — LayerNormalization: per example over the last
 * axis, y = gamma·(x − mean)/sqrt(var + epsilon) + beta (epsilon 0 = 1e-3). */
#include <math.h>
#include <stddef.h>

#include "nabla/ops.h"
#include "nn/internal.h"

typedef struct ln_config {
    float epsilon;
    bool no_center, no_scale;
} ln_config;

static const nb_field fields[] = {
    {"epsilon", NB_FIELD_FLOAT, offsetof(ln_config, epsilon), 0, INFINITY, false},
    {"no_center", NB_FIELD_BOOL, offsetof(ln_config, no_center), 0, 0, false},
    {"no_scale", NB_FIELD_BOOL, offsetof(ln_config, no_scale), 0, 0, false},
};

static nb_status build(nb_layer *l, nb_rng *rng) {
    (void)rng;
    const ln_config *c = l->config;
    const int f = l->in_dims[l->in_rank - 1];
    nb_tensor *gamma = NULL;
    if (!c->no_scale && !(gamma = nb_layer_add_tensor(l, "gamma", 1, &f, true))) return NB_ERROR;
    if (!c->no_center && !nb_layer_add_tensor(l, "beta", 1, &f, true)) return NB_ERROR;
    for (int i = 0; gamma && i < f; i++) gamma->data[i] = 1.0f;
    return NB_OK;
}

static nb_node *apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    (void)mc_dropout;
    const ln_config *c = l->config;
    nb_tensor *gamma = nb_layer_find_tensor(l, "gamma"), *beta = nb_layer_find_tensor(l, "beta");
    return nb_layernorm(g, x, gamma ? nb_param(g, gamma) : NULL, beta ? nb_param(g, beta) : NULL,
                        c->epsilon != 0 ? c->epsilon : 1e-3f);
}

const nb_layer_class nb__layer_norm_class = {
    .name = "LayerNormalization", .base_name = "layer_normalization", .config_size = sizeof(ln_config),
    .fields = fields, .n_fields = sizeof fields / sizeof fields[0], .build = build, .apply = apply,
};
