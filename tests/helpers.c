#include <criterion/criterion.h>

#include "helpers.h"

nb_tensor *t_tensor(const char *name, int rank, const int *dims, float lo, float hi, uint64_t seed) {
    nb_tensor *t = nb_tensor_new(rank, dims);
    cr_assert(t, "nb_tensor_new: %s", nb_last_error());
    nb_rng r;
    nb_rng_seed(&r, seed, 77);
    for (size_t i = 0; i < t->size; i++) t->data[i] = lo + (hi - lo) * nb_rng_uniform(&r);
    nb_tensor_set_name(t, name);
    return t;
}

nb_tensor *t_tensor_of(const char *name, int rank, const int *dims, const float *vals) {
    nb_tensor *t = nb_tensor_new(rank, dims);
    cr_assert(t, "nb_tensor_new: %s", nb_last_error());
    for (size_t i = 0; i < t->size; i++) t->data[i] = vals[i];
    nb_tensor_set_name(t, name);
    return t;
}

nb_node *t_weighted_sum(nb_graph *g, nb_node *y, nb_tensor **w, uint64_t seed) {
    nb_shape s = nb_node_shape(y);
    *w = t_tensor("loss_weights", s.rank, s.dim, -1.0f, 1.0f, seed);
    (*w)->trainable = false;
    return nb_sum(g, nb_mul(g, y, nb_constant(g, *w)));
}

void t_ok(const nb_graph *g) { cr_assert(nb_graph_status(g) == NB_OK, "graph error: %s", nb_graph_error(g)); }
