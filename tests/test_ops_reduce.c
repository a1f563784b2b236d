/* sum and mean, over everything and along an axis. */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

Test(reduce, sum_and_mean_of_everything) {
    nb_tensor *x = t_tensor("x", 3, (int[]){2, 3, 4}, -1, 1, 41), *w;
    nb_graph *g = nb_graph_new();
    nb_node *px = nb_param(g, x);
    nb_node *s = nb_sum(g, px), *m = nb_mean(g, px);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    double acc = 0;
    for (size_t i = 0; i < x->size; i++) acc += x->data[i];
    cr_assert_eq(nb_node_shape(s).rank, 0);
    cr_assert_float_eq(nb_node_value(s)[0], acc, 1e-5);
    cr_assert_float_eq(nb_node_value(m)[0], acc / 24, 1e-6);
    nb_assert_gradcheck(g, nb_add(g, s, nb_scale(g, m, 3.0f)), 1e-2);
    (void)w;
    nb_graph_free(g);
    nb_tensor_free(x);
}

static void check_axis(int axis, bool mean) {
    nb_tensor *x = t_tensor("x", 3, (int[]){2, 3, 4}, -1, 1, 42), *w;
    nb_graph *g = nb_graph_new();
    nb_node *px = nb_param(g, x);
    nb_node *y = mean ? nb_mean_axis(g, px, axis) : nb_sum_axis(g, px, axis);
    nb_node *loss = t_weighted_sum(g, y, &w, 43);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    int a = axis < 0 ? axis + 3 : axis;
    int dims[3] = {2, 3, 4}, out[2], r = 0;
    for (int d = 0; d < 3; d++)
        if (d != a) out[r++] = dims[d];
    nb_shape s = nb_node_shape(y);
    cr_assert(s.rank == 2 && s.dim[0] == out[0] && s.dim[1] == out[1]);
    float ref[12];
    for (int i = 0; i < out[0]; i++)
        for (int j = 0; j < out[1]; j++) {
            double acc = 0;
            for (int l = 0; l < dims[a]; l++) {
                int idx[3];
                int k = 0;
                for (int d = 0; d < 3; d++) idx[d] = d == a ? l : (k++ == 0 ? i : j);
                acc += x->data[(idx[0] * 3 + idx[1]) * 4 + idx[2]];
            }
            ref[i * out[1] + j] = (float)(mean ? acc / dims[a] : acc);
        }
    nb_assert_near(nb_node_value(y), ref, (size_t)(out[0] * out[1]), 1e-6, 1e-6);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
}

Test(reduce, along_each_axis) {
    for (int axis = 0; axis < 3; axis++) {
        check_axis(axis, false);
        check_axis(axis, true);
    }
    check_axis(-1, true);
}

Test(reduce, mean_over_the_batch_follows_the_feed) {
    float x[8 * 2];
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){8, 2});
    nb_node *m = nb_mean_axis(g, in, 0);
    nb_feed(g, in, x, 3);
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    cr_assert_float_eq(nb_node_value(m)[0], (0 + 2 + 4) / 3.0, 1e-6);
    cr_assert_float_eq(nb_node_value(m)[1], (1 + 3 + 5) / 3.0, 1e-6);
    nb_graph_free(g);
}

Test(reduce, axis_out_of_range_is_refused) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 3});
    cr_assert_null(nb_sum_axis(g, x, 2));
    cr_assert_str_eq(nb_graph_error(g), "sum: axis 2 out of range for [4,3]");
    nb_graph_free(g);
}
