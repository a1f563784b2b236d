/* Backward lets the first op that writes a gradient overwrite it instead of
 * zeroing the buffer and adding (graph/run.c, claim_first_writers). Every
 * arrangement of writers must still give the true gradient: shared weights,
 * a penalty beside a product, one node on both sides of a product, a
 * reshape view, and a second backward after the first. */
#include <criterion/criterion.h>

#include "helpers.h"
#include "nabla/testing.h"

static void check(nb_graph *g, nb_node *loss) {
    t_ok(g);
    nb_assert_gradcheck(g, loss, 1e-2);
}

Test(first_writer, weights_shared_by_two_products) {
    nb_graph *g = nb_graph_new();
    nb_tensor *x = t_tensor("x", 2, (int[]){6, 5}, -1, 1, 1), *w = t_tensor("w", 2, (int[]){5, 5}, -1, 1, 2);
    nb_node *wn = nb_param(g, w);
    nb_node *y = nb_tanh(g, nb_matmul(g, nb_tanh(g, nb_matmul(g, nb_param(g, x), wn)), wn));
    nb_tensor *c;
    check(g, t_weighted_sum(g, y, &c, 3));
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(w), nb_tensor_free(c);
}

/* The penalty comes after the product in the graph, so it writes w's
 * gradient first in backward, by adding; the product must then add too. */
Test(first_writer, a_penalty_written_before_the_product) {
    nb_graph *g = nb_graph_new();
    nb_tensor *x = t_tensor("x", 2, (int[]){4, 3}, -1, 1, 4), *w = t_tensor("w", 2, (int[]){3, 2}, -1, 1, 5);
    nb_node *wn = nb_param(g, w);
    nb_node *y = nb_matmul(g, nb_param(g, x), wn);
    nb_tensor *c;
    nb_node *loss = nb_add(g, t_weighted_sum(g, y, &c, 6), nb_scale(g, nb_sum_squares(g, wn), 0.3f));
    check(g, loss);
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(w), nb_tensor_free(c);
}

/* And after it: the product overwrites, the penalty adds. */
Test(first_writer, a_penalty_written_after_the_product) {
    nb_graph *g = nb_graph_new();
    nb_tensor *x = t_tensor("x", 2, (int[]){4, 3}, -1, 1, 7), *w = t_tensor("w", 2, (int[]){3, 2}, -1, 1, 8);
    nb_node *wn = nb_param(g, w);
    nb_node *pen = nb_scale(g, nb_sum_squares(g, wn), 0.3f);
    nb_node *y = nb_matmul(g, nb_param(g, x), wn);
    nb_tensor *c;
    check(g, nb_add(g, t_weighted_sum(g, y, &c, 9), pen));
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(w), nb_tensor_free(c);
}

Test(first_writer, one_node_on_both_sides_of_a_product) {
    nb_graph *g = nb_graph_new();
    nb_tensor *a = t_tensor("a", 2, (int[]){4, 4}, -1, 1, 10);
    nb_node *an = nb_param(g, a);
    nb_node *y = nb_matmul_t(g, an, an, false, true);
    nb_tensor *c;
    check(g, t_weighted_sum(g, y, &c, 11));
    nb_graph_free(g);
    nb_tensor_free(a), nb_tensor_free(c);
}

/* h feeds a product directly and, reshaped, another one: writers through the
 * view and around it share one buffer. */
Test(first_writer, a_gradient_shared_with_a_view) {
    nb_graph *g = nb_graph_new();
    nb_tensor *x = t_tensor("x", 2, (int[]){4, 6}, -1, 1, 12), *w = t_tensor("w", 2, (int[]){6, 6}, -1, 1, 13);
    nb_tensor *v = t_tensor("v", 2, (int[]){12, 3}, -1, 1, 14);
    nb_node *h = nb_tanh(g, nb_matmul(g, nb_param(g, x), nb_param(g, w)));
    nb_node *y1 = nb_matmul(g, h, nb_param(g, w));
    nb_node *y2 = nb_matmul(g, nb_reshape(g, h, 2, (int[]){2, 12}), nb_param(g, v));
    nb_tensor *c1, *c2;
    check(g, nb_add(g, t_weighted_sum(g, y2, &c2, 16), t_weighted_sum(g, y1, &c1, 15)));
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(w), nb_tensor_free(v), nb_tensor_free(c1), nb_tensor_free(c2);
}

/* Gradients are the last backward's, not a sum over calls, and a
 * parameter the second loss does not reach gets zero. */
Test(first_writer, a_second_backward_with_another_loss) {
    nb_graph *g = nb_graph_new();
    nb_tensor *x = t_tensor("x", 2, (int[]){3, 4}, -1, 1, 17), *w = t_tensor("w", 2, (int[]){4, 2}, -1, 1, 18);
    nb_tensor *u = t_tensor("u", 2, (int[]){4, 2}, -1, 1, 19);
    nb_node *xn = nb_param(g, x);
    nb_node *l1 = nb_sum(g, nb_matmul(g, xn, nb_param(g, w)));
    nb_node *l2 = nb_sum(g, nb_matmul(g, xn, nb_param(g, u)));
    nb_forward(g, NB_TRAINING);
    nb_backward(g, l1);
    nb_backward(g, l1);
    t_ok(g);
    /* d sum(x·w) / dw[p][j] = sum_i x[i][p] */
    for (int p = 0; p < 4; p++)
        for (int j = 0; j < 2; j++) {
            float want = 0;
            for (int i = 0; i < 3; i++) want += x->data[i * 4 + p];
            cr_assert_float_eq(w->grad[p * 2 + j], want, 1e-5f, "dw[%d][%d]", p, j);
        }
    nb_backward(g, l2);
    t_ok(g);
    for (int i = 0; i < 8; i++) cr_assert_eq(w->grad[i], 0.0f, "w is not reached by the second loss");
    nb_graph_free(g);
    nb_tensor_free(x), nb_tensor_free(w), nb_tensor_free(u);
}
