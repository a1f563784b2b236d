/* nn/layer_activation.c — Activation: any named activation as a layer. */
#include <stddef.h>

#include "nn/internal.h"

typedef struct act_config {
    char activation[NB_FIELD_STRING_MAX];
    float alpha; /* leaky_relu's slope (0 = 0.2, the book's), elu's alpha (0 = 1) */
} act_config;

static const nb_field fields[] = {
    {"activation", NB_FIELD_ACTIVATION, offsetof(act_config, activation), 0, 0, false},
    {"alpha", NB_FIELD_FLOAT, offsetof(act_config, alpha), 0, 0, false},
};

static nb_status build(nb_layer *l, nb_rng *rng) {
    (void)rng;
    return nb_layer_add_activation_tensors(l, ((const act_config *)l->config)->activation);
}

static nb_node *apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    (void)mc_dropout;
    const act_config *c = l->config;
    return nb_layer_activate(l, g, x, c->activation, c->alpha);
}

const nb_layer_class nb__activation_class = {
    .name = "Activation", .base_name = "activation", .config_size = sizeof(act_config),
    .fields = fields, .n_fields = sizeof fields / sizeof fields[0], .build = build, .apply = apply,
};
