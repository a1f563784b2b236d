#define _GNU_SOURCE /* memmem */
/* Functional models: graphs of layer calls with named inputs and outputs,
 * merges, shared layers, errors that stick to the model, saving and
 * loading, cloning, and training with a loss per output. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "nabla/nabla.h"

static nb_layer_spec dense(int units, const char *activation) { return nb_dense_spec(units, activation, NULL); }

/* Wide & deep with an auxiliary head: wide [5] and deep [6] inputs; two
 * hidden layers on deep; main = Dense(1) on concat(wide, hidden); aux =
 * Dense(1) on the hidden layer. */
static nb_model *wide_deep(uint64_t seed) {
    nb_model *m = nb_model_functional(seed);
    nb_sym wide = nb_model_input(m, "wide", 1, (int[]){5});
    nb_sym deep = nb_model_input(m, "deep", 1, (int[]){6});
    nb_layer_spec h = dense(30, "relu");
    nb_sym h1 = nb_model_call(m, h, deep);
    nb_sym h2 = nb_model_call(m, h, h1);
    nb_sym both = nb_model_merge(m, NB_LAYER_CONCATENATE, 2, (nb_sym[]){wide, h2});
    nb_layer_spec one = dense(1, NULL);
    nb_model_output(m, "main", nb_model_call(m, one, both));
    nb_model_output(m, "aux", nb_model_call(m, one, h2));
    cr_assert_eq(nb_model_status(m), NB_OK, "%s", nb_model_error(m));
    return m;
}

/* Synthetic data for wide_deep: targets main = sum(wide)/5 + tanh(deep·w),
 * aux = tanh(deep·w). */
typedef struct wd_data {
    float *wide, *deep, *main, *aux;
    nb_array inputs[2], targets[2];
    nb_data d;
} wd_data;

static void wd_make(wd_data *w, int n, uint64_t seed) {
    w->wide = malloc(sizeof(float) * n * 5), w->deep = malloc(sizeof(float) * n * 6);
    w->main = malloc(sizeof(float) * n), w->aux = malloc(sizeof(float) * n);
    nb_rng r;
    nb_rng_seed(&r, seed, 1);
    const float coef[6] = {0.5f, -0.3f, 0.8f, 0.1f, -0.6f, 0.4f};
    for (int i = 0; i < n; i++) {
        float s = 0, t = 0;
        for (int k = 0; k < 5; k++) s += (w->wide[i * 5 + k] = nb_rng_uniform(&r) * 2 - 1);
        for (int k = 0; k < 6; k++) t += coef[k] * (w->deep[i * 6 + k] = nb_rng_uniform(&r) * 2 - 1);
        w->aux[i] = tanhf(t);
        w->main[i] = s / 5 + w->aux[i];
    }
    /* named, in another order than the model's, to show matching by name */
    w->inputs[0] = (nb_array){"deep", w->deep, 6}, w->inputs[1] = (nb_array){"wide", w->wide, 5};
    w->targets[0] = (nb_array){"aux", w->aux, 1}, w->targets[1] = (nb_array){"main", w->main, 1};
    w->d = (nb_data){n, 2, w->inputs, 2, w->targets};
}

static void wd_free(wd_data *w) { free(w->wide), free(w->deep), free(w->main), free(w->aux); }

static const nb_output_loss wd_losses[] = {
    {.output = "main", .loss = {.kind = NB_LOSS_MSE}, .weight = 0.9f},
    {.output = "aux", .loss = {.kind = NB_LOSS_MSE}, .weight = 0.1f},
};

static nb_fit_opts wd_opts(int epochs) {
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = epochs, o.verbose = 0, o.seed = 3, o.batch_size = 32;
    o.optimizer = nb_optimizer_defaults(NB_ADAM);
    o.optimizer.lr = 0.01f;
    o.n_losses = 2, o.losses = wd_losses;
    return o;
}

Test(functional, a_wide_and_deep_model_has_its_inputs_outputs_layers_and_shapes) {
    nb_model *m = wide_deep(1);
    cr_assert_not(nb_model_is_sequential(m));
    cr_assert_eq(nb_model_input_count(m), 2);
    cr_assert_str_eq(nb_model_input_name(m, 1), "deep");
    cr_assert_eq(nb_model_output_count(m), 2);
    cr_assert_str_eq(nb_model_output_name(m, 0), "main");
    int dims[4];
    cr_assert_eq(nb_model_output_dims_at(m, 1, dims), 1);
    cr_assert_eq(dims[0], 1);
    /* dense, dense_1, concatenate, dense_2, dense_3 */
    cr_assert_eq(nb_model_layer_count(m), 5);
    cr_assert_str_eq(nb_layer_name(nb_model_layer(m, 2)), "concatenate");
    cr_assert_eq(nb_layer_input_count(nb_model_layer(m, 2)), 2);
    cr_assert_eq(nb_layer_output_dims(nb_model_layer(m, 2), dims), 1);
    cr_assert_eq(dims[0], 35);
    long t, nt;
    nb_model_count_params(m, &t, &nt);
    cr_assert_eq(t, (6 * 30 + 30) + (30 * 30 + 30) + (35 + 1) + (30 + 1));
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    nb_model_summary(m, f);
    fclose(f);
    cr_assert(strstr(text, "Connected to") && strstr(text, "concatenate (Concatenate)") &&
              strstr(text, "wide, dense_1") && strstr(text, "Outputs: main (None, 1), aux (None, 1)"), "%s", text);
    free(text);
    nb_model_free(m);
}

/* The graph built by nb_model_apply_all computes what the layers compute
 * by hand, one after the other. */
Test(functional, applying_the_model_equals_applying_its_layers_by_hand) {
    nb_model *m = wide_deep(2);
    wd_data w;
    wd_make(&w, 7, 5);
    float main_out[7], aux_out[7];
    cr_assert_eq(nb_predict_data(m, &w.d, 4, (float *[]){main_out, aux_out}), NB_OK, "%s", nb_last_error());
    nb_graph *g = nb_graph_new();
    nb_node *wide = nb_input(g, "w", 2, (int[]){7, 5}), *deep = nb_input(g, "d", 2, (int[]){7, 6});
    nb_node *h = nb_layer_apply(nb_model_layer(m, 1), g, nb_layer_apply(nb_model_layer(m, 0), g, deep, false), false);
    nb_node *main = nb_layer_apply(nb_model_layer(m, 3), g, nb_concat(g, 2, (nb_node *[]){wide, h}), false);
    nb_node *aux = nb_layer_apply(nb_model_layer(m, 4), g, h, false);
    nb_feed(g, wide, w.wide, 7), nb_feed(g, deep, w.deep, 7);
    cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_OK, "%s", nb_graph_error(g));
    for (int i = 0; i < 7; i++) {
        cr_assert_float_eq(main_out[i], nb_node_value(main)[i], 1e-6f);
        cr_assert_float_eq(aux_out[i], nb_node_value(aux)[i], 1e-6f);
    }
    nb_graph_free(g);
    wd_free(&w);
    nb_model_free(m);
}

Test(functional, training_with_two_weighted_losses_lowers_both_and_the_total_is_their_weighted_sum, .timeout = 60) {
    nb_model *m = wide_deep(3);
    wd_data w, v;
    wd_make(&w, 512, 7), wd_make(&v, 128, 8);
    nb_fit_opts o = wd_opts(15);
    o.validation_data = &v.d;
    nb_history h;
    cr_assert_eq(nb_fit_data(m, &w.d, &o, &h), NB_OK, "%s", nb_last_error());
    cr_assert_eq(h.n_outputs, 2);
    cr_assert_str_eq(h.output_names[1], "aux");
    cr_assert_str_eq(h.output_metric[0], "mae");
    const nb_epoch_metrics *first = &h.epochs[0], *last = &h.epochs[h.n_epochs - 1];
    for (int k = 0; k < 2; k++)
        cr_assert(last->val_output_loss[k] < 0.3 * first->output_loss[k], "output %d: %g then %g", k,
                  first->output_loss[k], last->val_output_loss[k]);
    cr_assert(last->val_output_loss[0] < 0.02, "main's validation MSE %g", last->val_output_loss[0]);
    /* no penalty: the total is the weighted sum, computed here */
    nb_epoch_metrics e;
    cr_assert_eq(nb_evaluate_data(m, &v.d, &o, &e), NB_OK, "%s", nb_last_error());
    cr_assert_float_eq(e.loss, 0.9 * e.output_loss[0] + 0.1 * e.output_loss[1], 1e-6);
    cr_assert_float_eq(e.loss, last->val_loss, 1e-6);
    /* main's MSE from the predictions, by hand */
    float *pm = malloc(sizeof(float) * 128), *pa = malloc(sizeof(float) * 128);
    cr_assert_eq(nb_predict_data(m, &v.d, 50, (float *[]){pm, pa}), NB_OK);
    double mse = 0;
    for (int i = 0; i < 128; i++) mse += (pm[i] - v.main[i]) * (double)(pm[i] - v.main[i]);
    cr_assert_float_eq(mse / 128, e.output_loss[0], 1e-5);
    free(pm), free(pa);
    nb_history_free(&h);
    wd_free(&w), wd_free(&v);
    nb_model_free(m);
}

Test(functional, an_ignored_output_gets_no_gradient_and_its_head_stays_as_it_was) {
    nb_model *m = wide_deep(4);
    wd_data w;
    wd_make(&w, 64, 9);
    nb_tensor *aux_kernel = nb_layer_tensor(nb_model_layer(m, 4), 0);
    float before[30];
    memcpy(before, aux_kernel->data, sizeof before);
    nb_output_loss only_main[] = {{.output = "main", .loss = {.kind = NB_LOSS_MSE}, .weight = 1}, {.output = "aux", .loss = {.kind = NB_LOSS_MSE}, .weight = 0, .ignore = true}};
    nb_fit_opts o = wd_opts(2);
    o.losses = only_main;
    cr_assert_eq(nb_fit_data(m, &w.d, &o, NULL), NB_OK, "%s", nb_last_error());
    cr_assert_eq(memcmp(before, aux_kernel->data, sizeof before), 0);
    /* and every loss ignored is refused */
    only_main[0].ignore = true;
    cr_assert_eq(nb_fit_data(m, &w.d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "every output's loss is ignored"), "%s", nb_last_error());
    wd_free(&w);
    nb_model_free(m);
}

Test(functional, data_and_losses_that_do_not_fit_are_refused_naming_what_is_wrong) {
    nb_model *m = wide_deep(5);
    wd_data w;
    wd_make(&w, 16, 1);
    nb_fit_opts o = wd_opts(1);
    nb_output_loss bad[] = {{.output = "nope", .loss = {.kind = NB_LOSS_MSE}, .weight = 1}};
    o.n_losses = 1, o.losses = bad;
    cr_assert_eq(nb_fit_data(m, &w.d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "output 'nope', which the model lacks"), "%s", nb_last_error());
    nb_output_loss neg[] = {{.output = "main", .loss = {.kind = NB_LOSS_MSE}, .weight = -1}};
    o.losses = neg;
    cr_assert_eq(nb_fit_data(m, &w.d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "loss weight -1"), "%s", nb_last_error());
    o = wd_opts(1);
    w.inputs[0].name = "deeep";
    cr_assert_eq(nb_fit_data(m, &w.d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "no input array is named 'deep'"), "%s", nb_last_error());
    w.inputs[0].name = "deep", w.inputs[0].dim = 5;
    cr_assert_eq(nb_fit_data(m, &w.d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "input 'deep' takes 6 features per example, its array has 5"), "%s",
              nb_last_error());
    w.inputs[0].dim = 6, w.targets[0].name = "aux2";
    cr_assert_eq(nb_fit_data(m, &w.d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "output 'aux' has a loss but no target array"), "%s", nb_last_error());
    w.targets[0].name = "aux";
    w.d.n_inputs = 1;
    cr_assert_eq(nb_fit_data(m, &w.d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "1 input arrays, the model 2 inputs"), "%s", nb_last_error());
    /* nb_predict and nb_model_apply are for one output */
    nb_dataset d = {.x = w.deep, .n = 16, .dim = 6};
    float out[16];
    cr_assert_eq(nb_predict(m, &d, 8, out), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "2 outputs; nb_predict_data"), "%s", nb_last_error());
    wd_free(&w);
    nb_model_free(m);
}

Test(functional, an_error_sticks_to_the_model_and_later_calls_do_nothing) {
    nb_model *m = nb_model_functional(1);
    nb_sym a = nb_model_input(m, "a", 1, (int[]){4});
    nb_sym b = nb_model_input(m, "b", 1, (int[]){3});
    nb_sym bad = nb_model_merge(m, NB_LAYER_ADD, 2, (nb_sym[]){a, b});
    cr_assert_eq(bad.id, -1);
    cr_assert_eq(nb_model_status(m), NB_ERROR);
    cr_assert(strstr(nb_model_error(m), "Add: input 1 has shape [3], input 0 has [4]"), "%s", nb_model_error(m));
    /* a good call now does nothing and keeps the first message */
    nb_layer_spec d = dense(2, NULL);
    cr_assert_eq(nb_model_call(m, d, a).id, -1);
    cr_assert_eq(nb_model_layer_count(m), 0);
    cr_assert(strstr(nb_model_error(m), "Add:"), "%s", nb_model_error(m));
    cr_assert_null(nb_model_clone(m));
    cr_assert_eq(nb_model_save(m, "/tmp/never.safetensors"), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "the model is in error: Add:"), "%s", nb_last_error());
    nb_model_free(m);
}

Test(functional, each_misuse_is_refused_with_its_message) {
    struct {
        const char *want;
    } cases[] = {{"Subtract: takes 2 to 2 inputs, given 3"}, {"Concatenate: input 1 has shape [2,3], input 0 [4,3]"},
                 {"(node 99) is not a node of this model"}, {"a Sequential model grows with nb_model_add"},
                 {"is an input; an output is a layer's"}, {"'o' is taken"}, {"the name 'a' is taken"},
                 {"kind 0 is not a merge"}, {"Dense 'dense' takes [4], given [3]"}};
    for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
        nb_model *m = c == 3 ? nb_model_new(1, (int[]){4}, 1) : nb_model_functional(1);
        nb_sym a = c == 3 ? NB_SYM_NONE : nb_model_input(m, "a", c == 1 ? 2 : 1, c == 1 ? (int[]){4, 3} : (int[]){4});
        nb_sym b = c == 1 ? nb_model_input(m, "b", 2, (int[]){2, 3}) : a;
        nb_layer_spec d = dense(3, NULL);
        switch (c) {
        case 0: nb_model_merge(m, NB_LAYER_SUBTRACT, 3, (nb_sym[]){a, a, a}); break;
        case 1: nb_model_merge(m, NB_LAYER_CONCATENATE, 2, (nb_sym[]){a, b}); break;
        case 2: nb_model_call(m, d, (nb_sym){99}); break;
        case 3: nb_model_input(m, "x", 1, (int[]){2}); break;
        case 4: nb_model_output(m, "o", a); break;
        case 5:
            nb_model_output(m, "o", nb_model_call(m, d, a));
            nb_model_output(m, "o", nb_model_call(m, d, a));
            break;
        case 6: nb_model_input(m, "a", 1, (int[]){2}); break;
        case 7: nb_model_merge(m, NB_LAYER_DENSE, 2, (nb_sym[]){a, a}); break;
        case 8: {
            nb_sym h = nb_model_call(m, d, a); /* dense: [4] -> [3] */
            nb_model_call_layer(m, nb_model_layer(m, 0), 1, &h);
            break;
        }
        }
        cr_assert_eq(nb_model_status(m), NB_ERROR, "case %d", c);
        cr_assert(strstr(nb_model_error(m), cases[c].want), "case %d: %s", c, nb_model_error(m));
        nb_model_free(m);
    }
}

/* A Siamese pair: one Dense called on two inputs, its two outputs
 * subtracted. The layer is one, its tensors once, its gradient the sum of
 * both calls'. */
static nb_model *siamese(uint64_t seed) {
    nb_model *m = nb_model_functional(seed);
    nb_sym a = nb_model_input(m, "left", 1, (int[]){4}), b = nb_model_input(m, "right", 1, (int[]){4});
    nb_layer_spec d = dense(3, "tanh");
    nb_sym ha = nb_model_call(m, d, a);
    nb_sym hb = nb_model_call_layer(m, nb_model_layer(m, 0), 1, &b);
    nb_sym diff = nb_model_merge(m, NB_LAYER_SUBTRACT, 2, (nb_sym[]){ha, hb});
    nb_layer_spec one = dense(1, NULL);
    nb_model_output(m, NULL, nb_model_call(m, one, diff));
    cr_assert_eq(nb_model_status(m), NB_OK, "%s", nb_model_error(m));
    return m;
}

Test(functional, a_shared_layer_holds_one_set_of_tensors_and_its_gradient_sums_both_calls) {
    nb_model *m = siamese(6);
    cr_assert_eq(nb_model_layer_count(m), 3);
    cr_assert_eq(nb_model_tensors(m, NULL), 4);
    cr_assert_str_eq(nb_model_output_name(m, 0), "dense_1");
    /* the gradient check of the whole model over its shared kernel */
    nb_graph *g = nb_graph_new();
    nb_node *in[2] = {nb_input(g, "l", 2, (int[]){3, 4}), nb_input(g, "r", 2, (int[]){3, 4})}, *out;
    cr_assert_eq(nb_model_apply_all(m, g, in, &out, false), NB_OK, "%s", nb_graph_error(g));
    nb_node *loss = nb_sum(g, out);
    float l[12], r[12];
    for (int i = 0; i < 12; i++) l[i] = 0.1f * (float)(i % 5) - 0.2f, r[i] = 0.05f * (float)(i % 7) - 0.1f;
    nb_feed(g, in[0], l, 3), nb_feed(g, in[1], r, 3);
    nb_tensor *k = nb_layer_tensor(nb_model_layer(m, 0), 0);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_backward(g, loss), NB_OK);
    float *grad = malloc(sizeof(float) * k->size);
    memcpy(grad, k->grad, sizeof(float) * k->size);
    for (size_t i = 0; i < k->size; i++) { /* central differences in float: a loose bound */
        const float keep = k->data[i], h = 1e-2f;
        k->data[i] = keep + h;
        nb_forward(g, NB_INFERENCE);
        double up = nb_node_value(loss)[0];
        k->data[i] = keep - h;
        nb_forward(g, NB_INFERENCE);
        double down = nb_node_value(loss)[0];
        k->data[i] = keep;
        cr_assert_float_eq(grad[i], (up - down) / (2 * h), 2e-3, "kernel[%zu]", i);
    }
    free(grad);
    nb_graph_free(g);
    nb_model_free(m);
}

Test(functional, saved_and_loaded_a_functional_model_is_the_same_model_with_the_same_predictions) {
    char dir[] = "/tmp/nabla-functional-XXXXXX", path[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/wd.safetensors", dir);
    nb_model *m = wide_deep(8);
    nb_layer_set_trainable(nb_model_layer(m, 0), false);
    wd_data w;
    wd_make(&w, 40, 2);
    cr_assert_eq(nb_fit_data(m, &w.d, &(nb_fit_opts){.epochs = 1, .batch_size = 16, .optimizer = nb_optimizer_defaults(NB_ADAM),
                                                   .n_losses = 2, .losses = wd_losses}, NULL), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_model_save(m, path), NB_OK, "%s", nb_last_error());
    nb_model *back = nb_model_load(path);
    cr_assert_not_null(back, "%s", nb_last_error());
    cr_assert_not(nb_model_is_sequential(back));
    cr_assert_eq(nb_model_input_count(back), 2);
    cr_assert_str_eq(nb_model_input_name(back, 0), "wide");
    cr_assert_str_eq(nb_model_output_name(back, 1), "aux");
    cr_assert_eq(nb_model_layer_count(back), 5);
    cr_assert_not(nb_layer_trainable(nb_model_layer(back, 0)));
    float p[2][40], q[2][40];
    cr_assert_eq(nb_predict_data(m, &w.d, 16, (float *[]){p[0], p[1]}), NB_OK);
    cr_assert_eq(nb_predict_data(back, &w.d, 16, (float *[]){q[0], q[1]}), NB_OK);
    cr_assert_eq(memcmp(p, q, sizeof p), 0, "the loaded model predicts other bits");
    /* a shared layer comes back shared */
    nb_model *s = siamese(9);
    cr_assert_eq(nb_model_save(s, path), NB_OK, "%s", nb_last_error());
    nb_model *sb = nb_model_load(path);
    cr_assert_not_null(sb, "%s", nb_last_error());
    cr_assert_eq(nb_model_layer_count(sb), 3);
    cr_assert_eq(nb_model_tensors(sb, NULL), 4);
    nb_model_free(s), nb_model_free(sb);
    nb_model_free(back);
    nb_model_free(m);
    wd_free(&w);
    unlink(path), rmdir(dir);
}

Test(functional, a_clone_is_independent_training_it_leaves_the_original_bits) {
    nb_model *m = wide_deep(10);
    nb_model *c = nb_model_clone(m);
    cr_assert_not_null(c, "%s", nb_last_error());
    cr_assert_eq(nb_model_output_count(c), 2);
    nb_tensor *const *tm, *const *tc;
    int n = nb_model_tensors(m, &tm);
    cr_assert_eq(nb_model_tensors(c, &tc), n);
    size_t floats = 0;
    for (int i = 0; i < n; i++) floats += tm[i]->size;
    float *before = malloc(sizeof(float) * floats), *at = before;
    for (int i = 0; i < n; i++) {
        cr_assert_neq(tm[i], tc[i]);
        cr_assert_eq(memcmp(tm[i]->data, tc[i]->data, tm[i]->size * sizeof(float)), 0);
        memcpy(at, tm[i]->data, tm[i]->size * sizeof(float)), at += tm[i]->size;
    }
    wd_data w;
    wd_make(&w, 64, 3);
    nb_fit_opts o = wd_opts(2);
    cr_assert_eq(nb_fit_data(c, &w.d, &o, NULL), NB_OK, "%s", nb_last_error());
    at = before;
    bool changed = false;
    for (int i = 0; i < n; i++) {
        cr_assert_eq(memcmp(tm[i]->data, at, tm[i]->size * sizeof(float)), 0, "the original's %s changed", tm[i]->name);
        changed = changed || memcmp(tc[i]->data, at, tc[i]->size * sizeof(float)) != 0;
        at += tm[i]->size;
    }
    cr_assert(changed, "the clone did not train");
    free(before);
    wd_free(&w);
    nb_model_free(c);
    nb_model_free(m);
}

/* A layer of a trained model called in a new functional model: the
 * encoder of transfer learning, shared between the two. */
Test(functional, another_model_s_layer_called_in_a_new_model_is_shared_and_outlives_its_first_model) {
    nb_model *a = nb_model_new(1, (int[]){4}, 1);
    nb_layer_spec d = dense(3, "relu");
    nb_layer *enc = nb_model_add(a, &d);
    nb_model *b = nb_model_functional(2);
    nb_sym x = nb_model_input(b, "x", 1, (int[]){4});
    nb_layer_spec one = dense(1, "sigmoid");
    nb_model_output(b, "p", nb_model_call(b, one, nb_model_call_layer(b, enc, 1, &x)));
    cr_assert_eq(nb_model_status(b), NB_OK, "%s", nb_model_error(b));
    cr_assert_eq(nb_model_layer(b, 0), enc);
    nb_model_free(a); /* b holds enc still */
    float xs[8] = {1, 2, 3, 4, -1, -2, -3, -4}, out[2];
    nb_array in = {"x", xs, 4};
    cr_assert_eq(nb_predict_data(b, &(nb_data){2, 1, &in, 0, NULL}, 2, (float *[]){out}), NB_OK, "%s", nb_last_error());
    cr_assert(out[0] > 0 && out[0] < 1 && out[1] > 0 && out[1] < 1);
    nb_model_free(b);
}

static bool write_bytes(const char *path, const char *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(bytes, 1, n, f) == n;
    return f && fclose(f) == 0 && ok;
}

/* A saved functional file whose graph is edited: each fault is refused
 * with its message. The weights' checksum covers the architecture, so the
 * edits recompute nothing: the refusal must come before the checksum's. */
Test(functional, a_corrupt_graph_in_a_file_is_refused_with_its_message) {
    char dir[] = "/tmp/nabla-functional-XXXXXX", path[96], bad[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    nb_model *s = siamese(11);
    cr_assert_eq(nb_model_save(s, path), NB_OK, "%s", nb_last_error());
    FILE *f = fopen(path, "rb");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const struct {
        const char *from, *to, *want;
    } edits[] = {
        {"{\\\"layer\\\":1,\\\"inputs\\\":[2,3]}", "{\\\"layer\\\":1,\\\"inputs\\\":[2,5]}", "input 1 is not an earlier node"},
        {"{\\\"layer\\\":1,\\\"inputs\\\":[2,3]}", "{\\\"layer\\\":9,\\\"inputs\\\":[2,3]}", "not {\"input\": k}"},
        {"{\\\"input\\\":1}", "{\\\"input\\\":0}", "not input 1, the next of the 2 inputs"},
        {"\\\"node\\\":5", "\\\"node\\\":0", "is an input; an output is a layer's"},
        {"\\\"input_shapes\\\":[[3],[3]]", "\\\"input_shapes\\\":[[3],[2]]", "Subtract: input 1 has shape [2], input 0 has [3]"},
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        char *at = memmem(buf, n, edits[e].from, strlen(edits[e].from));
        cr_assert_not_null(at, "edit %zu: '%s' is not in the file", e, edits[e].from);
        cr_assert_eq(strlen(edits[e].from), strlen(edits[e].to));
        static char copy[1 << 16];
        memcpy(copy, buf, n);
        memcpy(copy + (at - buf), edits[e].to, strlen(edits[e].to));
        cr_assert(write_bytes(bad, copy, n));
        nb_model *m = nb_model_load(bad);
        cr_assert_null(m, "edit %zu loaded", e);
        cr_assert(strstr(nb_last_error(), edits[e].want), "edit %zu: %s", e, nb_last_error());
    }
    nb_model_free(s);
    unlink(path), unlink(bad), rmdir(dir);
}

static bool die_after_epoch_2(const nb_epoch_metrics *e, void *user) {
    (void)user;
    if (e->epoch == 2) _exit(0); /* a crash: the backup of epoch 2 is on disk */
    return true;
}

/* Two outputs, a killed run resumed from its backup: the same bits and the
 * same per-output history as a run never stopped; the history's CSV has
 * each output's columns. */
Test(functional, a_killed_two_output_run_resumes_to_the_same_bits_and_per_output_history, .timeout = 60) {
    char dir[] = "/tmp/nabla-functional-XXXXXX", backup[96], csv[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(backup, sizeof backup, "%s/run.backup", dir);
    snprintf(csv, sizeof csv, "%s/h.csv", dir);
    wd_data w, v;
    wd_make(&w, 200, 4), wd_make(&v, 50, 5);
    nb_fit_opts o = wd_opts(4);
    o.validation_data = &v.d;
    o.optimizer = nb_optimizer_defaults(NB_NADAM);
    pid_t pid = fork(); /* before any thread of this process */
    cr_assert(pid >= 0);
    if (pid == 0) {
        nb_model *m = wide_deep(12);
        nb_fit_opts k = o;
        k.backup = backup, k.on_epoch = die_after_epoch_2;
        nb_fit_data(m, &w.d, &k, NULL);
        _exit(3);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the run did not die after epoch 2");
    nb_model *straight = wide_deep(12), *resumed = wide_deep(12);
    nb_history h1, h2;
    cr_assert_eq(nb_fit_data(straight, &w.d, &o, &h1), NB_OK, "%s", nb_last_error());
    o.backup = backup;
    cr_assert_eq(nb_fit_data(resumed, &w.d, &o, &h2), NB_OK, "%s", nb_last_error());
    nb_tensor *const *a, *const *b;
    int n = nb_model_tensors(straight, &a);
    for (int i = 0; i < n; i++)
        cr_assert_eq(memcmp(a[i]->data, (nb_model_tensors(resumed, &b), b[i]->data), a[i]->size * sizeof(float)), 0,
                     "%s differs", a[i]->name);
    for (int e = 0; e < 4; e++)
        for (int k = 0; k < 2; k++) {
            cr_assert(h1.epochs[e].output_loss[k] == h2.epochs[e].output_loss[k], "epoch %d output %d", e + 1, k);
            cr_assert(h1.epochs[e].val_output_metric[k] == h2.epochs[e].val_output_metric[k], "epoch %d", e + 1);
        }
    cr_assert_eq(nb_history_write_csv(&h2, csv), NB_OK, "%s", nb_last_error());
    FILE *f = fopen(csv, "r");
    char head[512];
    cr_assert(fgets(head, sizeof head, f));
    fclose(f);
    cr_assert_str_eq(head, "epoch,loss,mae,val_loss,val_mae,lr,seconds,main_loss,main_mae,val_main_loss,val_main_mae,"
                           "aux_loss,aux_mae,val_aux_loss,val_aux_mae\n");
    nb_history_free(&h1), nb_history_free(&h2);
    nb_model_free(straight), nb_model_free(resumed);
    wd_free(&w), wd_free(&v);
    unlink(csv), rmdir(dir);
}

/* A custom loop of nb_train_step over the batches nb_fit would make (its
 * shuffle of epoch 1) ends with the bits of nb_fit's epoch: the same graph,
 * optimizer and dropout stream. */
Test(functional, a_custom_loop_of_train_steps_ends_with_the_bits_of_fit) {
    wd_data w;
    wd_make(&w, 100, 6);
    nb_model *a = wide_deep(13), *b = wide_deep(13);
    nb_fit_opts o = wd_opts(1);
    o.batch_size = 16;
    cr_assert_eq(nb_fit_data(a, &w.d, &o, NULL), NB_OK, "%s", nb_last_error());
    /* the batches, gathered by hand */
    int perm[100];
    nb_shuffle(perm, 100, o.seed, 1);
    float wide[16 * 5], deep[16 * 6], main_t[16], aux_t[16];
    nb_array in[2] = {{"deep", deep, 6}, {"wide", wide, 5}}, tg[2] = {{"aux", aux_t, 1}, {"main", main_t, 1}};
    nb_data batch = {16, 2, in, 2, tg};
    nb_trainer *t = nb_trainer_new(b, &batch, &o);
    cr_assert_not_null(t, "%s", nb_last_error());
    for (int start = 0; start < 100; start += 16) {
        batch.n = 100 - start < 16 ? 100 - start : 16;
        for (int r = 0; r < batch.n; r++) {
            const int k = perm[start + r];
            memcpy(wide + r * 5, w.wide + k * 5, sizeof(float) * 5);
            memcpy(deep + r * 6, w.deep + k * 6, sizeof(float) * 6);
            main_t[r] = w.main[k], aux_t[r] = w.aux[k];
        }
        double loss;
        cr_assert_eq(nb_train_step(t, &batch, &loss), NB_OK, "%s", nb_last_error());
        cr_assert(isfinite(loss) && loss > 0);
    }
    cr_assert_eq(nb_trainer_steps(t), 7);
    nb_tensor *const *ta, *const *tb;
    int n = nb_model_tensors(a, &ta);
    nb_model_tensors(b, &tb);
    for (int i = 0; i < n; i++)
        cr_assert_eq(memcmp(ta[i]->data, tb[i]->data, ta[i]->size * sizeof(float)), 0, "%s differs", ta[i]->name);
    /* a batch too large, or laid out otherwise, is refused */
    batch.n = 17;
    cr_assert_eq(nb_train_step(t, &batch, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "a batch of 17 examples; the trainer takes 1 to 16"), "%s", nb_last_error());
    batch.n = 4, in[0].dim = 5;
    cr_assert_eq(nb_train_step(t, &batch, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "not laid out as the trainer's"), "%s", nb_last_error());
    nb_trainer_free(t);
    nb_model_free(a), nb_model_free(b);
    wd_free(&w);
}

/* A layer trained at half the rate moves half as far on a first step (the
 * gradient is the same), with SGD and with AdamW (whose decay follows the
 * rate); the other layers move as without it. */
Test(functional, a_layer_s_lr_multiplier_scales_its_updates_and_only_its) {
    wd_data w;
    wd_make(&w, 16, 7);
    const nb_optimizer_kind kinds[] = {NB_SGD, NB_ADAMW};
    for (int k = 0; k < 2; k++) {
        nb_model *a = wide_deep(14), *b = wide_deep(14), *start = wide_deep(14);
        cr_assert_eq(nb_layer_set_lr_multiplier(nb_model_layer(a, 0), 0.5f), NB_OK);
        nb_fit_opts o = wd_opts(1);
        o.batch_size = 16, o.optimizer = nb_optimizer_defaults(kinds[k]);
        o.optimizer.lr = 0.05f;
        if (kinds[k] == NB_ADAMW) o.optimizer.weight_decay = 0.1f;
        cr_assert_eq(nb_fit_data(a, &w.d, &o, NULL), NB_OK, "%s", nb_last_error());
        cr_assert_eq(nb_fit_data(b, &w.d, &o, NULL), NB_OK, "%s", nb_last_error());
        for (int l = 0; l < 2; l++) { /* layer 0 at half the rate, layer 1 as usual */
            nb_tensor *ta = nb_layer_tensor(nb_model_layer(a, l), 0), *tb = nb_layer_tensor(nb_model_layer(b, l), 0),
                      *t0 = nb_layer_tensor(nb_model_layer(start, l), 0);
            for (size_t i = 0; i < ta->size; i++) {
                const float da = ta->data[i] - t0->data[i], db = tb->data[i] - t0->data[i];
                const float want = l == 0 ? 0.5f * db : db;
                cr_assert_float_eq(da, want, 1e-6f + 1e-4f * fabsf(want), "kind %d layer %d [%zu]: %g, want %g", k, l,
                                   i, da, want);
            }
        }
        nb_model_free(a), nb_model_free(b), nb_model_free(start);
    }
    cr_assert_eq(nb_layer_set_lr_multiplier(NULL, 1), NB_ERROR);
    wd_free(&w);
}

/* An output's metric can be asked for: MSE beside an MSE loss is that loss
 * (no penalty here); accuracy needs class labels. */
Test(functional, an_output_s_metric_is_the_one_asked_for) {
    nb_model *m = wide_deep(15);
    wd_data w;
    wd_make(&w, 64, 8);
    nb_output_loss l[] = {{.output = "main", .loss = {.kind = NB_LOSS_MSE}, .weight = 1, .metric = NB_METRIC_MSE},
                          {.output = "aux", .loss = {.kind = NB_LOSS_HUBER}, .weight = 1, .metric = NB_METRIC_MAE}};
    nb_fit_opts o = wd_opts(2);
    o.losses = l;
    nb_history h;
    cr_assert_eq(nb_fit_data(m, &w.d, &o, &h), NB_OK, "%s", nb_last_error());
    cr_assert_str_eq(h.metric, "mse");
    cr_assert_str_eq(h.output_metric[1], "mae");
    nb_epoch_metrics e;
    cr_assert_eq(nb_evaluate_data(m, &w.d, &o, &e), NB_OK);
    cr_assert_float_eq(e.output_metric[0], e.output_loss[0], 1e-6);
    cr_assert(e.output_metric[1] > e.output_loss[1], "Huber %g below its MAE %g", e.output_loss[1], e.output_metric[1]);
    nb_history_free(&h);
    l[0].metric = NB_METRIC_ACCURACY;
    cr_assert_eq(nb_fit_data(m, &w.d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "metric 1 does not go with loss kind 2"), "%s", nb_last_error());
    wd_free(&w);
    nb_model_free(m);
}
