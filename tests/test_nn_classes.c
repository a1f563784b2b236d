/* Layer classes and activations registered from outside the library: a
 * kind and a custom-op activation defined here train, save and load back
 * to identical predictions; their fields drive validation, the summary and
 * the saved config; files naming a kind or an activation this process has
 * not registered are refused with a message naming it. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "nabla/custom.h"
#include "nabla/nn.h"
#include "nabla/ops.h"
#include "nabla/optim.h"

/* ---- Mish as an elementwise custom op: y = x·tanh(softplus(x)) ---- */

static double softplus_d(double x) { return x > 20 ? x : log1p(exp(x)); }

static int mish_shape(int n, const nb_shape *in, nb_shape *out, void *u, char *err, size_t len) {
    (void)n, (void)u, (void)err, (void)len;
    *out = in[0];
    return 0;
}

static void mish_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys, void *u) {
    (void)n, (void)s, (void)u;
    for (size_t i = 0; i < nb_shape_size(ys); i++) y[i] = (float)(in[0][i] * tanh(softplus_d(in[0][i])));
}

// d/dx x·tanh(sp(x)) = tanh(sp) + x·(1 − tanh²(sp))·sigmoid(x)
static void mish_bwd(int n, const float *const *in, const nb_shape *s, const float *y, const float *dy,
                     const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)s, (void)y, (void)u;
    for (size_t i = 0; i < nb_shape_size(ys); i++) {
        double x = in[0][i], t = tanh(softplus_d(x)), sg = 1 / (1 + exp(-x));
        din[0][i] += (float)(dy[i] * (t + x * (1 - t * t) * sg));
    }
}

static const nb_custom_op mish = {"mish", mish_shape, mish_fwd, mish_bwd};

/* ---- Affine: y = activation(x·scale + shift), per feature; scale learned
 * from `init`, shift fixed (never trained) at `shift` ---- */

typedef struct affine_config {
    float init, shift;
    char activation[NB_FIELD_STRING_MAX];
} affine_config;

static const nb_field affine_fields[] = {
    {"init", NB_FIELD_FLOAT, offsetof(affine_config, init), 0, 10, false},
    {"shift", NB_FIELD_FLOAT, offsetof(affine_config, shift), 0, 0, false},
    {"activation", NB_FIELD_ACTIVATION, offsetof(affine_config, activation), 0, 0, false},
};

static nb_status affine_build(nb_layer *l, nb_rng *rng) {
    (void)rng;
    const affine_config *c = nb_layer_config(l);
    int dims[4];
    int rank = nb_layer_input_dims(l, dims);
    nb_tensor *scale = nb_layer_add_tensor(l, "scale", 1, &dims[rank - 1], true);
    nb_tensor *shift = nb_layer_add_tensor(l, "shift", 1, &dims[rank - 1], false);
    if (!scale || !shift) return NB_ERROR;
    for (size_t i = 0; i < scale->size; i++) scale->data[i] = c->init, shift->data[i] = c->shift;
    return nb_layer_add_activation_tensors(l, c->activation);
}

static nb_node *affine_apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    (void)mc_dropout;
    const affine_config *c = nb_layer_config(l);
    nb_node *y = nb_add(g, nb_mul(g, x, nb_param(g, nb_layer_find_tensor(l, "scale"))),
                        nb_param(g, nb_layer_find_tensor(l, "shift")));
    return nb_layer_activate(l, g, y, c->activation, 0);
}

static const nb_layer_class affine = {
    .name = "Affine", .base_name = "affine", .config_size = sizeof(affine_config),
    .fields = affine_fields, .n_fields = 3, .build = affine_build, .apply = affine_apply,
};

static void register_both(void) {
    cr_assert_eq(nb_activation_register_custom(&mish), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_layer_class_register(&affine), NB_OK, "%s", nb_last_error());
}

/* input [4] -> Dense(8, mish) -> Affine(init 0.5, shift 0.25, mish) -> Dense(3) */
static nb_model *model_with_both(void) {
    nb_model *m = nb_model_new(1, (int[]){4}, 17);
    nb_layer_spec d1 = nb_dense_spec(8, "mish", "he_normal"), d2 = nb_dense_spec(3, NULL, NULL);
    cr_assert_not_null(nb_model_add(m, &d1), "%s", nb_last_error());
    affine_config c = {.init = 0.5f, .shift = 0.25f, .activation = "mish"};
    cr_assert_not_null(nb_model_add_layer(m, &affine, NULL, &c), "%s", nb_last_error());
    cr_assert_not_null(nb_model_add(m, &d2), "%s", nb_last_error());
    return m;
}

#define B 16

static void data(float *x, float *labels) {
    nb_rng r;
    nb_rng_seed(&r, 5, 0);
    for (int i = 0; i < B; i++) {
        float s = 0;
        for (int k = 0; k < 4; k++) s += x[i * 4 + k] = nb_rng_normal(&r);
        labels[i] = s < -1 ? 0 : s < 1 ? 1 : 2;
    }
}

static void predict(nb_model *m, const float *x, float *out) {
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){B, 4});
    nb_node *y = nb_model_apply(m, g, in, false);
    nb_feed(g, in, x, B);
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    memcpy(out, nb_node_value(y), B * 3 * sizeof(float));
    nb_graph_free(g);
}

Test(nn_classes, a_registered_kind_and_activation_train_save_and_load_with_identical_predictions) {
    register_both();
    nb_model *m = model_with_both();
    cr_assert_str_eq(nb_layer_name(nb_model_layer(m, 1)), "affine");
    cr_assert_str_eq(nb_layer_tensor(nb_model_layer(m, 1), 0)->name, "affine/scale");
    cr_assert_eq(nb_layer_spec_of(nb_model_layer(m, 1))->kind, NB_LAYER_CUSTOM);
    float x[B * 4], labels[B];
    data(x, labels);

    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){B, 4}), *y = nb_input(g, "y", 1, (int[]){B});
    nb_node *loss = nb_softmax_cross_entropy(g, nb_model_apply(m, g, in, false), y);
    t_ok(g);
    nb_tensor *const *t;
    int n = nb_model_tensors(m, &t);
    nb_optimizer_config oc = nb_optimizer_defaults(NB_SGD);
    oc.lr = 0.1f;
    nb_optimizer *opt = nb_optimizer_new(&oc, n, t);
    cr_assert_not_null(opt, "%s", nb_last_error());
    nb_feed(g, in, x, B);
    nb_feed(g, y, labels, B);
    float first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        nb_forward(g, NB_TRAINING);
        nb_backward(g, loss);
        t_ok(g);
        last = nb_node_value(loss)[0];
        if (step == 0) first = last;
        nb_optimizer_step(opt);
    }
    cr_assert_lt(last, 0.8f * first, "30 steps took the loss from %g to %g only", first, last);
    nb_tensor *scale = nb_layer_find_tensor(nb_model_layer(m, 1), "scale"),
              *shift = nb_layer_find_tensor(nb_model_layer(m, 1), "shift");
    cr_assert(scale->data[0] != 0.5f, "the learned scale did not move");
    for (size_t i = 0; i < shift->size; i++) cr_assert_eq(shift->data[i], 0.25f, "the fixed shift moved");
    nb_optimizer_free(opt);
    nb_graph_free(g);

    char path[] = "/tmp/nabla-classes-XXXXXX";
    cr_assert_not_null(mkdtemp(path));
    char file[64];
    snprintf(file, sizeof file, "%s/m.safetensors", path);
    cr_assert_eq(nb_model_save(m, file), NB_OK, "%s", nb_last_error());
    nb_model *back = nb_model_load(file);
    cr_assert_not_null(back, "%s", nb_last_error());
    cr_assert_eq(nb_layer_class_of(nb_model_layer(back, 1)), &affine);
    const affine_config *c = nb_layer_config(nb_model_layer(back, 1));
    cr_assert(c->init == 0.5f && c->shift == 0.25f && strcmp(c->activation, "mish") == 0);
    cr_assert_str_eq(nb_layer_spec_of(nb_model_layer(back, 0))->activation, "mish");
    cr_assert_not(nb_layer_find_tensor(nb_model_layer(back, 1), "shift")->trainable);
    float a[B * 3], b[B * 3];
    predict(m, x, a);
    predict(back, x, b);
    cr_assert_arr_eq(a, b, sizeof a, "predictions differ after save and load");
    nb_model_free(back);
    nb_model_free(m);
    unlink(file);
    rmdir(path);
}

Test(nn_classes, fields_drive_checks_the_summary_and_the_config_text) {
    register_both();
    nb_rng r;
    nb_rng_seed(&r, 1, 0);
    affine_config c = {.init = 20, .activation = "mish"};
    cr_assert_null(nb_layer_new_from_config(&affine, NULL, &c, 1, (int[]){3}, &r));
    cr_assert_str_eq(nb_last_error(), "Affine: init is 20, must be in [0,10]");
    c.init = 1;
    snprintf(c.activation, sizeof c.activation, "mush");
    cr_assert_null(nb_layer_new_from_config(&affine, NULL, &c, 1, (int[]){3}, &r));
    cr_assert_str_eq(nb_last_error(), "Affine: unknown activation 'mush'");
    c.shift = NAN;
    snprintf(c.activation, sizeof c.activation, "mish");
    cr_assert_null(nb_layer_new_from_config(&affine, NULL, &c, 1, (int[]){3}, &r));
    cr_assert_str_eq(nb_last_error(), "Affine: shift is nan, must be finite");
    /* NULL config: every field at its zero default */
    nb_layer *l = nb_layer_new_from_config(&affine, "", NULL, 1, (int[]){3}, &r);
    cr_assert_not_null(l, "%s", nb_last_error());
    char text[128];
    nb_layer_config_str(l, text, sizeof text);
    cr_assert_str_eq(text, "init=0, shift=0, activation=''");
    nb_layer_free(l);

    nb_model *m = model_with_both();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nb_model_summary(m, f);
    fclose(f);
    cr_assert(strstr(buf, " affine (Affine)") && strstr(buf, "init=0.5, shift=0.25, activation=mish"), "%s", buf);
    cr_assert(strstr(buf, "   units=8, kernel_init=he_normal, activation=mish\n"),
              "fields at their defaults are left out: %s", buf);
    free(buf);
    nb_model_free(m);
}

Test(nn_classes, registering_twice_or_a_bad_class_is_refused) {
    register_both();
    cr_assert_eq(nb_layer_class_register(&affine), NB_ERROR);
    cr_assert_str_eq(nb_last_error(), "layer class register: 'Affine' is already registered");
    cr_assert_eq(nb_layer_class_register(nb_layer_class_find("Dense")), NB_ERROR);
    cr_assert_eq(nb_activation_register_custom(&mish), NB_ERROR);
    cr_assert_str_eq(nb_last_error(), "activation register: 'mish' is already an activation");
    cr_assert_eq(nb_activation_register("relu", NULL, NULL), NB_ERROR);
    static const nb_field past[] = {{"x", NB_FIELD_FLOAT, 8, 0, 0, false}};
    static const nb_layer_class bad = {.name = "Bad", .base_name = "bad", .config_size = 8, .fields = past,
                                       .n_fields = 1, .apply = affine_apply};
    cr_assert_eq(nb_layer_class_register(&bad), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "'Bad' field 0 (x)"), "%s", nb_last_error());
    cr_assert_null(nb_layer_class_find("Bad"));
    static const nb_field keys[][2] = {{{"name", NB_FIELD_INT, 0, 0, 0, false}},
                                       {{"a.b.c", NB_FIELD_INT, 0, 0, 0, false}},
                                       {{".b", NB_FIELD_INT, 0, 0, 0, false}},
                                       {{"a", NB_FIELD_INT, 0, 0, 0, false}, {"a.b", NB_FIELD_INT, 4, 0, 0, false}}};
    for (int i = 0; i < 4; i++) {
        nb_layer_class k = {.name = "Keys", .base_name = "keys", .config_size = 8, .fields = keys[i],
                            .n_fields = i == 3 ? 2 : 1, .apply = affine_apply};
        cr_assert_eq(nb_layer_class_register(&k), NB_ERROR, "field set %d", i);
        cr_assert(strstr(nb_last_error(), "cannot key the JSON config"), "%s", nb_last_error());
    }
    cr_assert_eq(nb_layer_class_register(NULL), NB_ERROR);
    cr_assert_eq(nb_activation_register(NULL, NULL, NULL), NB_ERROR);
}

static void replace_in_file(const char *src, const char *dst, const char *from, const char *to) {
    FILE *f = fopen(src, "rb");
    cr_assert_not_null(f);
    static char b[1 << 16];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    cr_assert_eq(strlen(from), strlen(to), "same length: the header keeps its size");
    char *at = memmem(b, n, from, strlen(from));
    cr_assert_not_null(at, "'%s' not in the file", from);
    memcpy(at, to, strlen(to));
    f = fopen(dst, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

/* This test registers nothing: files that name Mish or Affine are refused,
 * and the message names what is missing. */
Test(nn_classes, a_file_with_an_unregistered_activation_or_kind_is_refused_naming_it) {
    nb_layer_spec d = nb_dense_spec(3, "mish", NULL);
    nb_model *m = nb_model_new(1, (int[]){4}, 1);
    cr_assert_null(nb_model_add(m, &d));
    cr_assert_str_eq(nb_last_error(), "Dense: unknown activation 'mish'");
    d = nb_dense_spec(3, "relu", NULL);
    cr_assert_not_null(nb_model_add(m, &d));
    char dir[] = "/tmp/nabla-classes-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char good[64], bad[64];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    cr_assert_eq(nb_model_save(m, good), NB_OK, "%s", nb_last_error());
    replace_in_file(good, bad, "\\\"activation\\\":\\\"relu\\\"", "\\\"activation\\\":\\\"mish\\\"");
    cr_assert_null(nb_model_load(bad));
    cr_assert(strstr(nb_last_error(), "Dense: unknown activation 'mish'") && strstr(nb_last_error(), bad), "%s",
              nb_last_error());
    replace_in_file(good, bad, "\\\"class_name\\\":\\\"Dense\\\"", "\\\"class_name\\\":\\\"Affin\\\"");
    cr_assert_null(nb_model_load(bad));
    cr_assert(strstr(nb_last_error(), "layer 0 has unknown kind \"Affin\""), "%s", nb_last_error());
    cr_assert(strstr(nb_last_error(), "nb_layer_class_register"), "%s", nb_last_error());
    nb_model_free(m);
    unlink(good), unlink(bad), rmdir(dir);
}

Test(nn_classes, null_and_empty_strings_mean_the_defaults) {
    nb_rng r;
    nb_rng_seed(&r, 1, 0);
    nb_layer_spec a = nb_activation_spec(NULL), d = nb_dense_spec(2, NULL, NULL);
    cr_assert_str_eq(a.activation, "");
    nb_layer *la = nb_layer_new(&a, 1, (int[]){3}, &r), *ld = nb_layer_new(&d, 1, (int[]){3}, &r);
    cr_assert(la && ld, "%s", nb_last_error());
    cr_assert_str_eq(nb_layer_name(la), "activation");
    cr_assert(nb_activation_known(NULL) && nb_activation_known("") && nb_activation_known("linear"));
    cr_assert_not(nb_activation_known("mish"));
    /* a name too long for the spec is refused, not cut to another name */
    nb_layer_spec longer = nb_activation_spec("leaky_relu_of_my_own");
    cr_assert_null(nb_layer_new(&longer, 1, (int[]){3}, &r));
    cr_assert(strstr(nb_last_error(), "Activation: the spec's activation does not fit in its 15 bytes"), "%s",
              nb_last_error());
    nb_layer_spec named = nb_dense_spec(2, NULL, NULL);
    memset(named.name, 'x', sizeof named.name);
    cr_assert_null(nb_layer_new(&named, 1, (int[]){3}, &r));
    cr_assert(strstr(nb_last_error(), "the spec's name does not fit"), "%s", nb_last_error());
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){1, 3});
    cr_assert_eq(nb_layer_apply(la, g, x, false), x, "no activation is the identity");
    cr_assert_null(nb_layer_activate(la, g, x, "mish", 0));
    cr_assert(strstr(nb_graph_error(g), "activation 'mish' is not registered"), "%s", nb_graph_error(g));
    nb_graph_free(g);
    nb_layer_free(la);
    nb_layer_free(ld);
}

/* A value other than the default for each field, inside its range. */
static void set_field(const nb_field *f, void *config) {
    char *p = (char *)config + f->offset;
    bool ranged = f->min < f->max;
    switch (f->type) {
    case NB_FIELD_INT: *(int *)p = !ranged ? 7 : f->max - f->min >= 3 ? (int)f->min + 2 : (int)f->max; break;
    case NB_FIELD_FLOAT: *(float *)p = !ranged ? -0.75f : isinf(f->max) ? 0.125f : (float)(f->min + (f->max - f->min) / 4);
        break;
    case NB_FIELD_BOOL: *(bool *)p = true; break;
    case NB_FIELD_ACTIVATION: strcpy(p, "elu"); break;
    case NB_FIELD_INITIALIZER: strcpy(p, "he_normal"); break;
    default: strcpy(p, "text \"with\" quotes"); break;
    }
}

/* Driven by the class table, as a new kind gets it for free: every field
 * of every class (this file's Affine too) is saved and read back exactly,
 * and the summary shows it. */
Test(nn_classes, every_class_s_fields_round_trip_through_a_saved_file) {
    register_both();
    cr_assert_eq(nb_layer_class_at(NB_LAYER_DENSE), nb_layer_class_find("Dense"));
    cr_assert_eq(nb_layer_class_at(nb_layer_class_count() - 1), &affine);
    cr_assert_null(nb_layer_class_at(nb_layer_class_count()));
    char dir[] = "/tmp/nabla-classes-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char file[64];
    snprintf(file, sizeof file, "%s/c.safetensors", dir);
    for (int i = 0; i < nb_layer_class_count(); i++) {
        const nb_layer_class *cls = nb_layer_class_at(i);
        void *config = calloc(1, cls->config_size + 1);
        for (int f = 0; f < cls->n_fields; f++) set_field(&cls->fields[f], config);
        nb_model *m;
        nb_layer *l;
        if (cls->max_inputs >= 2) { /* a merge: in a functional model, on two inputs */
            m = nb_model_functional(3);
            nb_sym in[2] = {nb_model_input(m, "a", 1, (int[]){6}), nb_model_input(m, "b", 1, (int[]){6})};
            nb_model_call_class(m, cls, NULL, config, 2, in);
            l = nb_model_layer(m, 0);
        } else {
            m = nb_model_new(1, (int[]){6}, 3);
            l = nb_model_add_layer(m, cls, NULL, config);
        }
        cr_assert_not_null(l, "%s: %s", cls->name, nb_last_error());
        cr_assert_eq(memcmp(nb_layer_config(l), config, cls->config_size), 0, "%s", cls->name);
        cr_assert_eq(nb_model_save(m, file), NB_OK, "%s: %s", cls->name, nb_last_error());
        nb_model *back = nb_model_load(file);
        cr_assert_not_null(back, "%s: %s", cls->name, nb_last_error());
        const nb_layer *lb = nb_model_layer(back, 0);
        cr_assert_eq(nb_layer_class_of(lb), cls);
        cr_assert_eq(memcmp(nb_layer_config(lb), config, cls->config_size), 0, "%s: a field did not come back",
                     cls->name);
        char a[512], b[512];
        nb_layer_config_str(l, a, sizeof a);
        nb_layer_config_str(lb, b, sizeof b);
        cr_assert_str_eq(a, b);
        for (int f = 0; f < cls->n_fields; f++)
            cr_assert(strstr(a, cls->fields[f].name), "%s: '%s' lacks %s", cls->name, a, cls->fields[f].name);
        nb_model_free(m);
        nb_model_free(back);
        free(config);
    }
    unlink(file);
    rmdir(dir);
}
