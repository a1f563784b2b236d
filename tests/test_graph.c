/* The graph: leaves, replay, gradients only where needed, batch changes,
 * parameters shared between graphs. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

Test(graph, adding_a_tensor_twice_gives_one_node) {
    nb_tensor *w = t_tensor("w", 1, (int[]){3}, -1, 1, 1);
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_param(g, w), *b = nb_param(g, w);
    cr_assert_eq(a, b);
    cr_assert_eq(nb_graph_node_count(g), 1);
    cr_assert_str_eq(nb_node_name(a), "w");
    cr_assert_str_eq(nb_node_op(a), "param");
    cr_assert_eq(nb_node_tensor(a), w);
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(graph, a_parameter_used_twice_gets_both_gradients) {
    /* loss = sum(w * w) + sum(3 w): dL/dw = 2w + 3 */
    nb_tensor *w = t_tensor("w", 1, (int[]){4}, -1, 1, 2);
    nb_graph *g = nb_graph_new();
    nb_node *p = nb_param(g, w);
    nb_node *loss = nb_add(g, nb_sum(g, nb_mul(g, p, p)), nb_sum(g, nb_scale(g, p, 3.0f)));
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    float ref[4];
    for (int i = 0; i < 4; i++) ref[i] = 2 * w->data[i] + 3;
    nb_assert_near(w->grad, ref, 4, 1e-6, 1e-6);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(graph, gradients_are_overwritten_not_accumulated_across_steps) {
    nb_tensor *w = t_tensor("w", 1, (int[]){4}, -1, 1, 3);
    nb_graph *g = nb_graph_new();
    nb_node *loss = nb_sum(g, nb_scale(g, nb_param(g, w), 2.0f));
    for (int step = 0; step < 3; step++) {
        nb_forward(g, NB_TRAINING);
        nb_backward(g, loss);
    }
    t_ok(g);
    for (int i = 0; i < 4; i++) cr_assert_eq(w->grad[i], 2.0f);
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(graph, frozen_parameters_and_inputs_get_no_gradient) {
    /* y = (x·w1 + b1)·w2 with w1 and b1 frozen: only w2 gets a gradient and
     * the branch below it is skipped entirely. */
    nb_tensor *w1 = t_tensor("w1", 2, (int[]){3, 4}, -1, 1, 4), *b1 = t_tensor("b1", 1, (int[]){4}, -1, 1, 5);
    nb_tensor *w2 = t_tensor("w2", 2, (int[]){4, 2}, -1, 1, 6);
    w1->trainable = false;
    b1->trainable = false;
    float x[2 * 3] = {1, 2, 3, 4, 5, 6};
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){2, 3});
    nb_node *h = nb_add(g, nb_matmul(g, in, nb_param(g, w1)), nb_param(g, b1));
    nb_node *y = nb_matmul(g, h, nb_param(g, w2));
    nb_node *loss = nb_sum(g, y);
    nb_feed(g, in, x, 2);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    cr_assert_null(w1->grad, "a frozen parameter must not even get a gradient buffer");
    cr_assert_null(b1->grad);
    cr_assert_null(nb_node_grad(in));
    cr_assert_null(nb_node_grad(h), "the frozen branch must be skipped");
    cr_assert_not_null(nb_node_grad(y));
    /* dL/dw2[i][j] = sum over rows of h[r][i] */
    const float *hv = nb_node_value(h);
    float ref[8];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) ref[i * 2 + j] = hv[i] + hv[4 + i];
    nb_assert_near(w2->grad, ref, 8, 1e-5, 1e-5);

    /* unfreezing takes effect at the next backward, without rebuilding */
    w1->trainable = true;
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    cr_assert_not_null(w1->grad);
    cr_assert_not_null(nb_node_grad(h));
    nb_graph_free(g);
    nb_tensor_free(w1);
    nb_tensor_free(b1);
    nb_tensor_free(w2);
}

Test(graph, nodes_the_loss_does_not_reach_are_skipped) {
    nb_tensor *w = t_tensor("w", 1, (int[]){3}, -1, 1, 7);
    nb_graph *g = nb_graph_new();
    nb_node *p = nb_param(g, w);
    nb_node *other = nb_scale(g, p, 5.0f); /* a second head */
    nb_node *loss = nb_sum(g, p);
    nb_node *after = nb_sum(g, other);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    cr_assert_null(nb_node_grad(other));
    cr_assert_null(nb_node_grad(after));
    for (int i = 0; i < 3; i++) cr_assert_eq(w->grad[i], 1.0f);
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(graph, a_smaller_last_batch_runs_without_rebuilding) {
    nb_tensor *w = t_tensor("w", 2, (int[]){2, 2}, -1, 1, 8);
    float x[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 8};
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){4, 2});
    nb_node *loss = nb_mean(g, nb_matmul(g, in, nb_param(g, w)));
    nb_feed(g, in, x, 4);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    size_t arena = nb_graph_arena_bytes(g);
    cr_assert_gt(arena, 0);
    nb_feed(g, in, x, 3);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    cr_assert_eq(nb_graph_arena_bytes(g), arena);
    /* mean over 3 rows x 2 columns: dL/dw[i][j] = sum_r x[r][i] / 6 */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            cr_assert_float_eq(w->grad[i * 2 + j], (x[i] + x[2 + i] + x[4 + i]) / 6.0f, 1e-6);
    nb_feed(g, in, x, 4);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    cr_assert_eq(nb_node_shape(in).dim[0], 4);
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(graph, parameters_are_shared_between_graphs) {
    nb_tensor *w = t_tensor("w", 1, (int[]){3}, 1, 2, 9);
    nb_graph *train = nb_graph_new(), *infer = nb_graph_new();
    nb_node *lt = nb_sum(train, nb_param(train, w));
    nb_node *li = nb_sum(infer, nb_scale(infer, nb_param(infer, w), 2.0f));
    nb_forward(train, NB_TRAINING);
    nb_backward(train, lt);
    for (int i = 0; i < 3; i++) w->data[i] -= 0.5f * w->grad[i]; /* one SGD step */
    nb_forward(infer, NB_INFERENCE);
    t_ok(train);
    t_ok(infer);
    double acc = 0;
    for (int i = 0; i < 3; i++) acc += 2.0 * w->data[i];
    cr_assert_float_eq(nb_node_value(li)[0], acc, 1e-5, "the other graph sees the update");
    nb_graph_free(train);
    nb_graph_free(infer);
    nb_tensor_free(w);
}

Test(graph, scalars_and_constants_get_no_gradient) {
    nb_tensor *w = t_tensor("w", 1, (int[]){3}, 1, 2, 10), *c = t_tensor("c", 1, (int[]){3}, 1, 2, 11);
    nb_graph *g = nb_graph_new();
    nb_node *k = nb_constant(g, c), *two = nb_scalar(g, 2.0f);
    nb_node *loss = nb_sum(g, nb_mul(g, nb_mul(g, nb_param(g, w), k), two));
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    cr_assert_null(nb_node_grad(k));
    cr_assert_null(nb_node_grad(two));
    cr_assert_str_eq(nb_node_op(two), "constant");
    for (int i = 0; i < 3; i++) cr_assert_float_eq(w->grad[i], 2.0f * c->data[i], 1e-6);
    nb_graph_free(g);
    nb_tensor_free(w);
    nb_tensor_free(c);
}

Test(graph, node_names_and_listing) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "pixels", 2, (int[]){2, 2});
    nb_node *y = nb_scale(g, x, 1.0f);
    cr_assert_str_eq(nb_node_name(x), "pixels");
    cr_assert_str_eq(nb_node_name(y), "scale#1");
    nb_node_set_name(y, "scaled");
    cr_assert_str_eq(nb_node_name(y), "scaled");
    cr_assert_eq(nb_graph_node_count(g), 2);
    cr_assert_eq(nb_graph_node(g, 1), y);
    cr_assert_null(nb_graph_node(g, 2));
    nb_graph_free(g);
}

Test(graph, gradcheck_reports_where_a_wrong_gradient_is) {
    /* a custom op with a deliberately wrong backward must be caught */
    extern const nb_custom_op *t_wrong_square(void);
    nb_tensor *w = t_tensor("w", 1, (int[]){5}, 0.5f, 1.5f, 12);
    nb_graph *g = nb_graph_new();
    nb_node *p = nb_param(g, w);
    nb_node *loss = nb_sum(g, nb_custom(g, t_wrong_square(), 1, &p, NULL));
    nb_gradcheck_result r;
    cr_assert_eq(nb_gradcheck(g, loss, NULL, &r), NB_OK, "%s", nb_graph_error(g));
    cr_assert_gt(r.max_rel_error, 0.1);
    cr_assert(strstr(r.where, "param 'w' [5] index"), "%s", r.where);
    cr_assert_eq(r.checked, 5);
    nb_graph_free(g);
    nb_tensor_free(w);
}

#include "graph/internal.h"

Test(graph, the_op_table_holds_every_op_complete) {
    static const char *names[] = {"matmul", "add", "sub", "mul", "div", "scale", "sum", "mean",
                                  "reshape", "concat", "slice", "sigmoid", "tanh", "relu",
                                  "leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "gelu_tanh", "swish",
                                  "softplus", "softmax", "log_softmax", "softmax_cross_entropy",
                                  "bce_with_logits", "mse", "huber", "batchnorm", "layernorm",
                                  "dropout", "alpha_dropout", "l1_norm", "l2_norm", "sum_squares",
                                  "custom", "elementwise"};
    cr_assert_eq(nb__op_table_len, (int)(sizeof names / sizeof names[0]));
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const nb_op *op = nb__op_by_name(names[i]);
        cr_assert_not_null(op, "no op named %s", names[i]);
        cr_assert_str_eq(op->name, names[i]);
        cr_assert_not_null(op->infer, "%s has no shape inference", names[i]);
        if (!op->view) {
            cr_assert_not_null(op->forward, "%s has no forward", names[i]);
            cr_assert_not_null(op->backward, "%s has no backward", names[i]);
        }
    }
    cr_assert_null(nb__op_by_name("no_such_op"));
}

Test(graph, a_graph_extended_after_a_run_at_a_small_batch_is_planned_for_the_largest) {
    nb_tensor *w = t_tensor("w", 2, (int[]){1, 3}, -1, 1, 21);
    static float x[4096];
    for (int i = 0; i < 4096; i++) x[i] = (float)(i % 7);
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){4096, 1});
    nb_node *y = nb_matmul(g, in, nb_param(g, w));
    nb_feed(g, in, x, 1);
    nb_forward(g, NB_TRAINING);
    nb_node *loss = nb_sum(g, nb_relu(g, y)); /* added after a run at batch 1 */
    nb_feed(g, in, x, 4096);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    double ref = 0;
    for (int i = 0; i < 4096; i++)
        for (int j = 0; j < 3; j++) ref += fmax(0.0, (double)x[i] * w->data[j]);
    cr_assert_float_eq(nb_node_value(loss)[0], ref, 1e-3 * ref);
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(graph, a_parameter_the_loss_does_not_reach_gets_a_zero_gradient_not_a_stale_one) {
    nb_tensor *a = t_tensor("a", 1, (int[]){2}, 1, 2, 22), *b = t_tensor("b", 1, (int[]){2}, 1, 2, 23);
    nb_graph *g = nb_graph_new();
    nb_node *la = nb_sum(g, nb_param(g, a)), *lb = nb_sum(g, nb_param(g, b));
    nb_forward(g, NB_TRAINING);
    nb_backward(g, la);
    cr_assert_eq(a->grad[0], 1.0f);
    nb_backward(g, lb);
    t_ok(g);
    cr_assert_eq(a->grad[0], 0.0f, "a's gradient from the other loss survived");
    cr_assert_eq(b->grad[1], 1.0f);
    nb_graph_free(g);
    nb_tensor_free(a), nb_tensor_free(b);
}
