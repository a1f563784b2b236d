/* nn/layer_flatten.c — Flatten: [B, d1, ..., dk] -> [B, d1·...·dk]. */
#include <stdbool.h>
#include <stdio.h>

#include "nabla/ops.h"
#include "nn/internal.h"

static int shape(const void *config, int rank, const int *in, int *out_rank, int *out, char *err, size_t len) {
    (void)config;
    long long n = 1;
    bool over = false;
    for (int i = 0; i < rank && !over; i++) over = __builtin_mul_overflow(n, (long long)in[i], &n) || n > 0x7fffffff;
    if (over) {
        snprintf(err, len, "the input's %d dims hold more features than an int counts", rank);
        return 1;
    }
    *out_rank = 1;
    out[0] = (int)n;
    return 0;
}

static nb_node *apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    (void)l, (void)mc_dropout;
    return nb_flatten(g, x);
}

const nb_layer_class nb__flatten_class = {
    .name = "Flatten", .base_name = "flatten", .config_size = 0, .shape = shape, .apply = apply,
};
