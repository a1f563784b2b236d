/* Layers and Sequential models: shapes, names, values, freezing,
 * regularization, max-norm, MC dropout, summaries and bad specs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/nn.h"
#include "nabla/testing.h"

static nb_model *mlp(void) {
    nb_model *m = nb_model_new(2, (int[]){28, 28}, 42);
    cr_assert_not_null(m, "%s", nb_last_error());
    nb_layer_spec flat = {.kind = NB_LAYER_FLATTEN};
    cr_assert_not_null(nb_model_add(m, &flat));
    nb_layer_spec d1 = nb_dense_spec(300, "relu", "he_normal"), d2 = nb_dense_spec(100, "relu", "he_normal");
    nb_layer_spec d3 = nb_dense_spec(10, NULL, NULL);
    cr_assert_not_null(nb_model_add(m, &d1), "%s", nb_last_error());
    cr_assert_not_null(nb_model_add(m, &d2));
    cr_assert_not_null(nb_model_add(m, &d3));
    return m;
}

Test(nn, a_sequential_model_has_keras_names_shapes_and_counts) {
    nb_model *m = mlp();
    cr_assert_eq(nb_model_layer_count(m), 4);
    cr_assert_str_eq(nb_layer_name(nb_model_layer(m, 0)), "flatten");
    cr_assert_str_eq(nb_layer_name(nb_model_layer(m, 1)), "dense");
    cr_assert_str_eq(nb_layer_name(nb_model_layer(m, 3)), "dense_2");
    cr_assert_str_eq(nb_layer_tensor(nb_model_layer(m, 2), 0)->name, "dense_1/kernel");
    cr_assert_str_eq(nb_layer_tensor(nb_model_layer(m, 2), 1)->name, "dense_1/bias");
    int dims[4];
    cr_assert_eq(nb_model_output_dims(m, dims), 1);
    cr_assert_eq(dims[0], 10);
    long t, nt;
    nb_model_count_params(m, &t, &nt);
    cr_assert_eq(t, 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10); /* 266,610 */
    cr_assert_eq(nt, 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nb_model_summary(m, f);
    fclose(f);
    cr_assert(strstr(buf, "Total params: 266,610"), "%s", buf);
    cr_assert(strstr(buf, " dense_1 (Dense)"), "%s", buf);
    cr_assert(strstr(buf, "(None, 784)"), "%s", buf);
    free(buf);
    nb_model_free(m);
}

Test(nn, dense_computes_x_w_plus_b_then_its_activation) {
    nb_rng r;
    nb_rng_seed(&r, 1, 0);
    nb_layer_spec s = nb_dense_spec(3, "relu", NULL);
    nb_layer *l = nb_layer_new(&s, 1, (int[]){4}, &r);
    cr_assert_not_null(l, "%s", nb_last_error());
    nb_tensor *w = nb_layer_tensor(l, 0), *b = nb_layer_tensor(l, 1);
    for (int j = 0; j < 3; j++) b->data[j] = 0.1f * (float)(j - 1);
    /* default glorot_uniform: limit sqrt(6 / (4 + 3)) */
    for (size_t i = 0; i < w->size; i++) cr_assert(fabsf(w->data[i]) <= sqrtf(6.0f / 7.0f));
    float x[2 * 4] = {1, -2, 3, 0.5f, -1, 0, 2, 1};
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){2, 4});
    nb_node *y = nb_layer_apply(l, g, in, false);
    nb_feed(g, in, x, 2);
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    float ref[6];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            double acc = b->data[j];
            for (int k = 0; k < 4; k++) acc += (double)x[i * 4 + k] * w->data[k * 3 + j];
            ref[i * 3 + j] = (float)(acc > 0 ? acc : 0);
        }
    nb_assert_near(nb_node_value(y), ref, 6, 1e-6, 1e-6);
    nb_graph_free(g);
    nb_layer_free(l);
}

/* loss = CE(model(x)) + penalty, on a small batch */
static nb_node *train_graph(nb_model *m, nb_graph *g, nb_node **in, nb_node **labels, int batch, int features) {
    *in = nb_input(g, "x", 2, (int[]){batch, features});
    *labels = nb_input(g, "y", 1, (int[]){batch});
    nb_node *loss = nb_softmax_cross_entropy(g, nb_model_apply(m, g, *in, false), *labels);
    nb_node *p = nb_model_penalty(m, g);
    return p ? nb_add(g, loss, p) : loss;
}

Test(nn, gradients_flow_through_every_layer_kind) {
    nb_model *m = nb_model_new(1, (int[]){6}, 3);
    nb_layer_spec specs[] = {
        nb_dense_spec(8, NULL, "he_normal"), nb_batch_norm_spec(), nb_activation_spec("elu"),
        nb_dense_spec(8, "prelu", "lecun_normal"), {.kind = NB_LAYER_LAYER_NORM},
        nb_dense_spec(4, "tanh", "glorot_normal"), nb_dense_spec(3, NULL, NULL),
    };
    specs[0].no_bias = true;
    specs[5].kernel_reg = (nb_regularizer){.l1 = 0.01f, .l2 = 0.02f};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        cr_assert_not_null(nb_model_add(m, &specs[i]), "%s", nb_last_error());
    /* start PReLU away from 0 so its slope gradient is exercised */
    nb_tensor *alpha = nb_layer_tensor(nb_model_layer(m, 3), 2);
    cr_assert_str_eq(alpha->name, "dense_1/alpha");
    for (size_t i = 0; i < alpha->size; i++) alpha->data[i] = 0.25f;
    float x[5 * 6], y[5] = {0, 1, 2, 1, 0};
    nb_rng r;
    nb_rng_seed(&r, 5, 0);
    for (int i = 0; i < 30; i++) x[i] = nb_rng_normal(&r);
    nb_graph *g = nb_graph_new();
    nb_node *in, *labels;
    nb_node *loss = train_graph(m, g, &in, &labels, 5, 6);
    nb_feed(g, in, x, 5);
    nb_feed(g, labels, y, 5);
    t_ok(g);
    nb_assert_gradcheck(g, loss, 2e-2);
    nb_graph_free(g);
    nb_model_free(m);
}

Test(nn, the_penalty_is_l1_sum_abs_plus_l2_sum_squares) {
    nb_model *m = nb_model_new(1, (int[]){5}, 4);
    nb_layer_spec s = nb_dense_spec(3, NULL, NULL);
    s.kernel_reg = (nb_regularizer){.l1 = 0.1f, .l2 = 0.01f};
    nb_layer *l = nb_model_add(m, &s);
    nb_graph *g = nb_graph_new();
    nb_node *p = nb_model_penalty(m, g);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    nb_tensor *w = nb_layer_tensor(l, 0);
    double l1 = 0, l2 = 0;
    for (size_t i = 0; i < w->size; i++) l1 += fabs(w->data[i]), l2 += (double)w->data[i] * w->data[i];
    cr_assert_float_eq(nb_node_value(p)[0], 0.1 * l1 + 0.01 * l2, 1e-6);
    nb_graph_free(g);
    nb_model_free(m);
}

Test(nn, max_norm_rescales_only_the_columns_above_the_limit) {
    nb_rng r;
    nb_rng_seed(&r, 2, 0);
    nb_layer_spec s = nb_dense_spec(3, NULL, NULL);
    s.max_norm = 1.0f;
    nb_layer *l = nb_layer_new(&s, 1, (int[]){2}, &r);
    nb_tensor *w = nb_layer_tensor(l, 0); /* [2,3]: columns (3,4), (0.3,0.4), (6,8) */
    float v[6] = {3, 0.3f, 6, 4, 0.4f, 8};
    memcpy(w->data, v, sizeof v);
    nb_layer_constrain(l);
    float ref[6] = {0.6f, 0.3f, 0.6f, 0.8f, 0.4f, 0.8f};
    nb_assert_near(w->data, ref, 6, 1e-6, 1e-6);
    nb_layer_free(l);
}

Test(nn, a_frozen_layer_gets_no_gradient_and_its_moving_statistics_never_train) {
    nb_model *m = nb_model_new(1, (int[]){4}, 6);
    nb_layer_spec d = nb_dense_spec(5, "relu", NULL), bn = nb_batch_norm_spec(), out = nb_dense_spec(2, NULL, NULL);
    nb_layer *first = nb_model_add(m, &d);
    nb_layer *norm = nb_model_add(m, &bn);
    nb_model_add(m, &out);
    long t, nt;
    nb_model_count_params(m, &t, &nt);
    cr_assert_eq(nt, 10, "moving mean and variance of 5 features");
    nb_layer_set_trainable(first, false);
    nb_layer_set_trainable(norm, false);
    nb_layer_set_trainable(norm, true);
    cr_assert(!nb_layer_tensor(norm, 2)->trainable, "moving statistics stay untrainable");
    nb_model_count_params(m, &t, &nt);
    cr_assert_eq(t, 5 + 5 + 5 * 2 + 2);
    float x[3 * 4] = {1, 2, 3, 4, -1, 0, 1, 2, 0.5f, 0.5f, -2, 1}, y[3] = {0, 1, 1};
    nb_graph *g = nb_graph_new();
    nb_node *in, *labels;
    nb_node *loss = train_graph(m, g, &in, &labels, 3, 4);
    nb_feed(g, in, x, 3);
    nb_feed(g, labels, y, 3);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    cr_assert_null(nb_layer_tensor(first, 0)->grad, "frozen kernel got a gradient buffer");
    cr_assert_not_null(nb_layer_tensor(norm, 0)->grad);
    nb_graph_free(g);
    nb_model_free(m);
}

Test(nn, mc_dropout_keeps_inference_random_and_plain_inference_is_not) {
    nb_model *m = nb_model_new(1, (int[]){50}, 7);
    nb_layer_spec d = nb_dropout_spec(0.5f), dense = nb_dense_spec(10, NULL, NULL);
    nb_model_add(m, &d);
    nb_model_add(m, &dense);
    float x[50];
    for (int i = 0; i < 50; i++) x[i] = 1.0f;
    for (int mc = 0; mc <= 1; mc++) {
        nb_graph *g = nb_graph_new();
        nb_node *in = nb_input(g, "x", 2, (int[]){1, 50});
        nb_node *y = nb_model_apply(m, g, in, mc);
        nb_feed(g, in, x, 1);
        float first[10];
        nb_forward(g, NB_INFERENCE);
        memcpy(first, nb_node_value(y), sizeof first);
        nb_forward(g, NB_INFERENCE);
        t_ok(g);
        bool same = memcmp(first, nb_node_value(y), sizeof first) == 0;
        cr_assert_eq(same, !mc, "%s", mc ? "MC dropout passes were identical" : "plain inference was random");
        nb_graph_free(g);
    }
    nb_model_free(m);
}

Test(nn, bad_specs_and_inputs_say_what_is_wrong) {
    nb_model *m = nb_model_new(2, (int[]){28, 28}, 1);
    nb_layer_spec d = nb_dense_spec(10, NULL, NULL);
    cr_assert_null(nb_model_add(m, &d));
    cr_assert(strstr(nb_last_error(), "Dense: input has 2 feature dimensions, it needs 1 (add a Flatten first)"),
              "%s", nb_last_error());
    nb_layer_spec flat = {.kind = NB_LAYER_FLATTEN};
    nb_model_add(m, &flat);
    d = nb_dense_spec(10, "relux", NULL);
    cr_assert_null(nb_model_add(m, &d));
    cr_assert_str_eq(nb_last_error(), "Dense: unknown activation 'relux'");
    d = nb_dense_spec(0, NULL, NULL);
    cr_assert_null(nb_model_add(m, &d));
    cr_assert_str_eq(nb_last_error(), "Dense: units is 0, must be >= 1");
    d = nb_dense_spec(10, NULL, "he_normall");
    cr_assert_null(nb_model_add(m, &d));
    cr_assert_str_eq(nb_last_error(), "Dense: unknown initializer 'he_normall'");
    nb_layer_spec drop = nb_dropout_spec(1.0f);
    cr_assert_null(nb_model_add(m, &drop));
    cr_assert_str_eq(nb_last_error(), "Dropout: rate is 1, must be in [0,1)");
    cr_assert_null(nb_model_new(0, (int[]){1}, 0));
    cr_assert_eq(nb_model_layer_count(m), 1, "failed adds leave the model as it was");

    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){8, 100});
    cr_assert_null(nb_model_apply(m, g, in, false));
    cr_assert(strstr(nb_graph_error(g), "Flatten 'flatten': input [8,100] does not fit, expected [-1,28,28]"),
              "%s", nb_graph_error(g));
    nb_graph_free(g);
    nb_model_free(m);
}

Test(nn, automatic_names_skip_the_names_a_user_gave) {
    nb_model *m = nb_model_new(1, (int[]){4}, 1);
    nb_layer_spec named = nb_dense_spec(3, NULL, NULL), plain = nb_dense_spec(3, NULL, NULL);
    snprintf(named.name, sizeof named.name, "dense_1");
    nb_model_add(m, &named);
    nb_layer *second = nb_model_add(m, &plain), *third = nb_model_add(m, &plain);
    cr_assert_str_eq(nb_layer_name(second), "dense_2", "dense_1 is taken");
    cr_assert_str_eq(nb_layer_name(third), "dense_3");
    cr_assert_null(nb_model_add(m, &named));
    cr_assert_str_eq(nb_last_error(), "model add: a layer named 'dense_1' already exists");
    nb_model_free(m);
}

Test(nn, max_norm_along_axis_1_rescales_rows) {
    nb_rng r;
    nb_rng_seed(&r, 2, 0);
    nb_layer_spec s = nb_dense_spec(2, NULL, "variance_scaling(1,fan_in,normal)");
    s.max_norm = 1.0f;
    s.max_norm_axis = 1;
    nb_layer *l = nb_layer_new(&s, 1, (int[]){3}, &r);
    cr_assert_not_null(l, "%s", nb_last_error());
    nb_tensor *w = nb_layer_tensor(l, 0); /* [3,2]: rows (3,4), (0.3,0.4), (0,2) */
    float v[6] = {3, 4, 0.3f, 0.4f, 0, 2};
    memcpy(w->data, v, sizeof v);
    nb_layer_constrain(l);
    float ref[6] = {0.6f, 0.8f, 0.3f, 0.4f, 0, 1};
    nb_assert_near(w->data, ref, 6, 1e-6, 1e-6);
    nb_layer_free(l);
    s.max_norm_axis = 2;
    cr_assert_null(nb_layer_new(&s, 1, (int[]){3}, &r));
    cr_assert_str_eq(nb_last_error(), "Dense: max_norm_axis is 2, must be in [0,1]");
}

Test(nn, layers_compose_into_any_graph_two_inputs_a_shared_trunk_and_two_heads) {
    nb_rng r;
    nb_rng_seed(&r, 11, 0);
    nb_layer_spec ts = nb_dense_spec(6, "tanh", NULL), hs = nb_dense_spec(3, NULL, NULL), as = nb_dense_spec(1, NULL, NULL);
    nb_layer *trunk = nb_layer_new(&ts, 1, (int[]){4}, &r);
    nb_layer *head = nb_layer_new(&hs, 1, (int[]){12}, &r), *aux = nb_layer_new(&as, 1, (int[]){6}, &r);
    float xa[3 * 4], xb[3 * 4], labels[3] = {0, 2, 1}, target[3] = {0.5f, -1, 2};
    for (int i = 0; i < 12; i++) xa[i] = nb_rng_normal(&r), xb[i] = nb_rng_normal(&r);
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", 2, (int[]){3, 4}), *b = nb_input(g, "b", 2, (int[]){3, 4});
    nb_node *y = nb_input(g, "labels", 1, (int[]){3}), *t = nb_input(g, "target", 2, (int[]){3, 1});
    nb_node *ta = nb_layer_apply(trunk, g, a, false), *tb = nb_layer_apply(trunk, g, b, false);
    nb_node *logits = nb_layer_apply(head, g, nb_concat(g, 2, (nb_node *[]){ta, tb}), false);
    nb_node *loss = nb_add(g, nb_softmax_cross_entropy(g, logits, y),
                           nb_scale(g, nb_mse(g, nb_layer_apply(aux, g, ta, false), t), 0.5f));
    nb_feed(g, a, xa, 3), nb_feed(g, b, xb, 3), nb_feed(g, y, labels, 3), nb_feed(g, t, target, 3);
    t_ok(g);
    /* the shared trunk appears once per tensor in the graph, and gets the sum of both paths */
    cr_assert_eq(nb_param(g, nb_layer_tensor(trunk, 0)), nb_param(g, nb_layer_tensor(trunk, 0)));
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_layer_free(trunk), nb_layer_free(head), nb_layer_free(aux);
}

Test(nn, a_frozen_batch_norm_keeps_its_statistics_and_uses_them) {
    nb_model *m = nb_model_new(1, (int[]){3}, 1);
    nb_layer_spec bn = nb_batch_norm_spec();
    nb_layer *l = nb_model_add(m, &bn);
    nb_tensor *mean = nb_layer_tensor(l, 2), *var = nb_layer_tensor(l, 3);
    for (int j = 0; j < 3; j++) mean->data[j] = 1.0f, var->data[j] = 4.0f;
    nb_layer_set_trainable(l, false);
    float x[2 * 3] = {1, 2, 3, 5, 6, 7};
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){2, 3});
    nb_node *y = nb_model_apply(m, g, in, false);
    nb_feed(g, in, x, 2);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(nb_node_value(y)[i], (x[i] - 1.0f) / sqrtf(4.0f + 1e-3f), 1e-6, "element %d", i);
    for (int j = 0; j < 3; j++) cr_assert(mean->data[j] == 1.0f && var->data[j] == 4.0f, "statistics moved");
    nb_graph_free(g);
    nb_model_free(m);
}

/* The tanh approximation of GELU (ops' gelu_tanh) is a layer activation by
 * name: y = x·σ(2·√(2/π)·(x + 0.044715·x³)), against double here. */
Test(nn, gelu_tanh_is_an_activation_by_name) {
    cr_assert(nb_activation_known("gelu_tanh"));
    nb_rng r;
    nb_rng_seed(&r, 1, 0);
    nb_layer_spec s = nb_activation_spec("gelu_tanh");
    nb_layer *l = nb_layer_new(&s, 1, (int[]){5}, &r);
    cr_assert_not_null(l, "%s", nb_last_error());
    float x[5] = {-3, -0.5f, 0, 0.7f, 2.5f};
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){1, 5});
    nb_node *y = nb_layer_apply(l, g, in, false);
    nb_feed(g, in, x, 1);
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    float ref[5];
    for (int i = 0; i < 5; i++) {
        const double v = x[i], z = 2 * sqrt(2 / M_PI) * (v + 0.044715 * v * v * v);
        ref[i] = (float)(v / (1 + exp(-z)));
    }
    nb_assert_near(nb_node_value(y), ref, 5, 1e-6, 1e-6);
    nb_graph_free(g);
    nb_layer_free(l);
}

/* Issue 10, hole 8: Flatten's size was cast to int (input [16, 268435505, 1]
 * loaded as a 784-feature model) and its product could overflow. */
Test(nn, flatten_refuses_more_features_than_an_int_counts) {
    nb_layer_spec f = {.kind = NB_LAYER_FLATTEN};
    nb_model *m = nb_model_new(3, (int[]){16, 268435505, 1}, 1);
    cr_assert_null(nb_model_add(m, &f));
    cr_assert(strstr(nb_last_error(), "more features than an int counts"), "%s", nb_last_error());
    nb_model_free(m);
    m = nb_model_new(3, (int[]){2147483647, 2147483647, 2147483647}, 1);
    cr_assert_null(nb_model_add(m, &f), "an overflowing product must be refused, not wrap");
    cr_assert(strstr(nb_last_error(), "more features than an int counts"), "%s", nb_last_error());
    nb_model_free(m);
}
