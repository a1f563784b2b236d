/* nn/layer_dropout.c — Dropout and AlphaDropout (SELU's), one file for the
 * two since they differ only in the op: random in training, the identity
 * in inference unless MC dropout keeps them random. */
#include <stddef.h>

#include "graph/internal.h"
#include "nabla/ops.h"
#include "nn/internal.h"

typedef struct dropout_config {
    float rate;
} dropout_config;

static const nb_field fields[] = {{"rate", NB_FIELD_FLOAT, offsetof(dropout_config, rate), 0, 1, true}};

static nb_node *mc(nb_node *y, bool mc_dropout) {
    if (y && mc_dropout) nb_node_set_stochastic(y, true);
    return y;
}

static nb_node *apply_dropout(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    float rate = ((const dropout_config *)l->config)->rate;
    return rate == 0 ? x : mc(nb_dropout(g, x, rate), mc_dropout);
}

static nb_node *apply_alpha(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    float rate = ((const dropout_config *)l->config)->rate;
    return rate == 0 ? x : mc(nb_alpha_dropout(g, x, rate), mc_dropout);
}

const nb_layer_class nb__dropout_class = {
    .name = "Dropout", .base_name = "dropout", .config_size = sizeof(dropout_config),
    .fields = fields, .n_fields = 1, .apply = apply_dropout,
};

const nb_layer_class nb__alpha_dropout_class = {
    .name = "AlphaDropout", .base_name = "alpha_dropout", .config_size = sizeof(dropout_config),
    .fields = fields, .n_fields = 1, .apply = apply_alpha,
};
