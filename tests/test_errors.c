/* User mistakes: each gives NB_ERROR and a message naming what is wrong,
 * never a crash, and a graph in error does nothing after. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

#define assert_error_contains(g, text) \
    cr_assert(strstr(nb_graph_error(g), (text)), "message was: '%s'", nb_graph_error(g))

Test(errors, a_graph_in_error_does_nothing_and_keeps_the_first_message) {
    nb_tensor *w = t_tensor("w", 2, (int[]){300, 100}, -1, 1, 1);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){32, 784});
    nb_node *y = nb_matmul(g, x, nb_param(g, w));
    cr_assert_null(y);
    int count = nb_graph_node_count(g);
    /* everything after is a no-op, NULL in, NULL out */
    nb_node *z = nb_add(g, y, y);
    cr_assert_null(z);
    cr_assert_null(nb_sum(g, x));
    cr_assert_null(nb_input(g, "more", 1, (int[]){3}));
    cr_assert_eq(nb_graph_node_count(g), count);
    float data[32 * 784] = {0};
    cr_assert_eq(nb_feed(g, x, data, 32), NB_ERROR);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_ERROR);
    cr_assert_eq(nb_backward(g, z), NB_ERROR);
    cr_assert_str_eq(nb_graph_error(g), "matmul: inner dimensions differ: [32,784] x [300,100]");
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(errors, null_inputs_and_foreign_nodes) {
    nb_graph *g = nb_graph_new(), *h = nb_graph_new();
    nb_node *x = nb_input(g, "x", 1, (int[]){3});
    cr_assert_null(nb_add(g, x, NULL));
    assert_error_contains(g, "add: input 1 is NULL");
    nb_node *other = nb_input(h, "other", 1, (int[]){3});
    cr_assert_null(nb_add(h, other, x));
    assert_error_contains(h, "add: input 1 ('x') belongs to another graph");
    nb_graph_free(g);
    nb_graph_free(h);
}

Test(errors, bad_leaves) {
    nb_graph *g = nb_graph_new();
    cr_assert_null(nb_input(g, "x", 0, (int[]){3}));
    assert_error_contains(g, "input: rank 0 outside [1,4]");
    nb_graph_free(g);
    g = nb_graph_new();
    cr_assert_null(nb_input(g, "x", 2, (int[]){3, 0}));
    assert_error_contains(g, "input: dimension 1 is 0, must be >= 1");
    nb_graph_free(g);
    g = nb_graph_new();
    cr_assert_null(nb_param(g, NULL));
    assert_error_contains(g, "param: tensor is NULL");
    nb_graph_free(g);
}

Test(errors, bad_tensors_say_why) {
    cr_assert_null(nb_tensor_new(5, (int[]){1, 1, 1, 1, 1}));
    cr_assert_str_eq(nb_last_error(), "tensor: rank 5 outside [0,4]");
    cr_assert_null(nb_tensor_new(2, (int[]){4, -2}));
    cr_assert_str_eq(nb_last_error(), "tensor: dimension 1 is -2, must be >= 1");
    cr_assert_null(nb_tensor_new(1, NULL));
    cr_assert_str_eq(nb_last_error(), "tensor: dims is NULL for rank 1");
    nb_tensor_free(NULL);
}

Test(errors, bad_feeds) {
    float data[8] = {0};
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 2});
    cr_assert_eq(nb_feed(g, x, data, 5), NB_ERROR);
    assert_error_contains(g, "feed: batch 5 for input 'x' outside [1,4]");
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 2, (int[]){4, 2});
    nb_node *s = nb_sum(g, x);
    cr_assert_eq(nb_feed(g, s, data, 1), NB_ERROR);
    assert_error_contains(g, "feed: node 'sum#1' is a sum, not an input");
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 2, (int[]){4, 2});
    cr_assert_eq(nb_feed(g, x, NULL, 1), NB_ERROR);
    assert_error_contains(g, "feed: data for input 'x' is NULL");
    nb_graph_free(g);
}

Test(errors, running_without_feeding_or_with_mixed_batches) {
    float data[8] = {0};
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 2}), *y = nb_input(g, "y", 2, (int[]){4, 2});
    nb_add(g, x, y);
    nb_feed(g, x, data, 4);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_ERROR);
    assert_error_contains(g, "forward: input 'y' was not fed");
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 2, (int[]){4, 2}), y = nb_input(g, "y", 2, (int[]){4, 2});
    nb_add(g, x, y);
    nb_feed(g, x, data, 4);
    nb_feed(g, y, data, 3);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_ERROR);
    assert_error_contains(g, "inputs fed with different batch sizes: 'x' 4, 'y' 3");
    nb_graph_free(g);

    g = nb_graph_new();
    cr_assert_eq(nb_forward(g, (nb_mode)7), NB_ERROR);
    assert_error_contains(g, "forward: mode 7 is neither");
    nb_graph_free(g);
}

Test(errors, backward_needs_a_scalar_loss_after_a_forward) {
    nb_tensor *w = t_tensor("w", 1, (int[]){3}, -1, 1, 2);
    nb_graph *g = nb_graph_new();
    nb_node *p = nb_param(g, w);
    nb_node *y = nb_scale(g, p, 2.0f);
    cr_assert_eq(nb_backward(g, y), NB_ERROR);
    assert_error_contains(g, "backward: run a forward pass first");
    nb_graph_free(g);

    g = nb_graph_new();
    y = nb_scale(g, nb_param(g, w), 2.0f);
    nb_forward(g, NB_TRAINING);
    cr_assert_eq(nb_backward(g, y), NB_ERROR);
    assert_error_contains(g, "backward: loss 'scale#1' has shape [3], it must have one element");
    nb_graph_free(g);

    g = nb_graph_new();
    cr_assert_eq(nb_backward(g, NULL), NB_ERROR);
    assert_error_contains(g, "backward: loss is NULL");
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(errors, non_finite_values_are_traced_to_their_node) {
    nb_tensor *a = t_tensor_of("a", 1, (int[]){3}, (float[]){1, 2, 3});
    nb_tensor *b = t_tensor_of("b", 1, (int[]){3}, (float[]){1, 0, 1});
    nb_graph *g = nb_graph_new();
    nb_node *q = nb_div(g, nb_param(g, a), nb_param(g, b));
    nb_node *loss = nb_sum(g, q);
    /* off by default: the infinity flows through silently */
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    nb_graph_check_finite(g, true);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_ERROR);
    assert_error_contains(g, "forward: non-finite value inf in node 'div#2' (op div) at index 1");
    (void)loss;
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

Test(errors, non_finite_gradients_are_traced_to_their_node) {
    /* d/da (a/b) = 1/b is fine, d/db = -a/b^2 overflows for tiny b */
    nb_tensor *a = t_tensor_of("a", 1, (int[]){2}, (float[]){1e30f, 1});
    nb_tensor *b = t_tensor_of("b", 1, (int[]){2}, (float[]){1e-10f, 1});
    nb_graph *g = nb_graph_new();
    nb_graph_check_finite(g, true);
    nb_node *loss = nb_sum(g, nb_div(g, nb_param(g, a), nb_scale(g, nb_param(g, b), 1e-20f)));
    nb_forward(g, NB_TRAINING);
    cr_assert_eq(nb_graph_status(g), NB_ERROR);
    assert_error_contains(g, "forward: non-finite value inf in node 'div#");
    nb_graph_free(g);

    g = nb_graph_new();
    nb_graph_check_finite(g, true);
    a->data[0] = 1e20f;
    b->data[0] = 1e-15f; /* a/b = 1e35 is finite, a/b^2 = 1e50 is not */
    loss = nb_sum(g, nb_div(g, nb_param(g, a), nb_param(g, b)));
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_backward(g, loss), NB_ERROR);
    assert_error_contains(g, "backward: non-finite value");
    assert_error_contains(g, "in node 'div#2' (op div)");
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

Test(errors, calls_with_null_graphs_or_nodes_do_not_crash) {
    cr_assert_eq(nb_graph_status(NULL), NB_ERROR);
    cr_assert_str_eq(nb_graph_error(NULL), "graph is NULL");
    cr_assert_null(nb_input(NULL, "x", 1, (int[]){1}));
    cr_assert_eq(nb_forward(NULL, NB_TRAINING), NB_ERROR);
    cr_assert_eq(nb_backward(NULL, NULL), NB_ERROR);
    cr_assert_eq(nb_feed(NULL, NULL, NULL, 1), NB_ERROR);
    cr_assert_null(nb_node_value(NULL));
    cr_assert_eq(nb_node_size(NULL), 0);
    cr_assert_eq(nb_node_set_stochastic(NULL, true), NB_ERROR);
    nb_graph_free(NULL);
    nb_graph_set_seed(NULL, 1);
}

Test(errors, element_counts_that_would_overflow_are_refused) {
    cr_assert_null(nb_tensor_new(4, (int[]){65536, 65536, 65536, 65536}));
    cr_assert_str_eq(nb_last_error(), "tensor: [65536,65536,65536,65536] has more than 2^40 elements");
    nb_graph *g = nb_graph_new();
    cr_assert_null(nb_input(g, "x", 4, (int[]){65536, 65536, 65536, 65536}));
    cr_assert_str_eq(nb_graph_error(g), "input: more than 2^40 elements");
    nb_graph_free(g);
}
