/* Gradient-health diagnostics in fit: each statistic against a hand
 * computation on a small net, the warnings of vanishing and exploding
 * gradients and of dying ReLUs, and no allocation per step or epoch. */
#define _GNU_SOURCE /* open_memstream */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_count.h"
#include "helpers.h"
#include "nabla/nabla.h"

typedef struct row {
    long step;
    int epoch, layer;
    char name[48];
    double mean, sd, saturated, dead, grad, ratio;
} row;

/* The CSV's rows (at most max); their count. */
static int read_rows(const char *path, row *rows, int max) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "no diagnostics at %s", path);
    char line[512];
    cr_assert(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "step,epoch,layer,name,act_mean,act_std,saturated,dead,grad_norm,update_ratio\n");
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        row *r = &rows[n++];
        cr_assert_eq(sscanf(line, "%ld,%d,%d,%47[^,],%lf,%lf,%lf,%lf,%lf,%lf", &r->step, &r->epoch, &r->layer, r->name,
                            &r->mean, &r->sd, &r->saturated, &r->dead, &r->grad, &r->ratio), 10, "%s", line);
    }
    fclose(f);
    return n;
}

static char *tmp_path(const char *name) {
    static char dir[] = "/tmp/nabla-diag-XXXXXX";
    static bool made;
    if (!made) {
        cr_assert_not_null(mkdtemp(dir));
        made = true;
    }
    char *p = malloc(128);
    snprintf(p, 128, "%s/%s", dir, name);
    return p;
}

/* 4 examples of 3 features, labels 0..1; Dense(4, relu) then Dense(2). */
static float xs[12] = {0.5f, -1, 2, 1, 0.25f, -0.5f, -2, 1, 0.5f, 1.5f, -1, -0.25f};
static float ys[4] = {0, 1, 1, 0};

static nb_model *small(void) {
    nb_model *m = nb_model_new(1, (int[]){3}, 5);
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 4, .activation = "relu"});
    cr_assert_not_null(nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 2}));
    return m;
}

Test(diagnose, each_statistic_equals_a_hand_computation_on_a_small_net) {
    nb_model *m = small(), *c = nb_model_clone(m);
    /* one dead unit: its bias far below what its inputs reach */
    nb_layer_tensor(nb_model_layer(m, 0), 1)->data[2] = -50;
    nb_layer_tensor(nb_model_layer(c, 0), 1)->data[2] = -50;
    nb_dataset d = {.x = xs, .y = ys, .n = 4, .dim = 3, .rows = 1, .cols = 3, .n_classes = 2};
    char *path = tmp_path("small.csv");
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = 1, o.batch_size = 4, o.verbose = 0, o.diagnose = path, o.diagnose_every = 1;
    o.optimizer.lr = 0.1f; /* SGD: the update is lr times the gradient */
    cr_assert_eq(nb_fit(m, &d, &o, NULL), NB_OK, "%s", nb_last_error());
    row r[4];
    cr_assert_eq(read_rows(path, r, 4), 2);

    /* by hand, on the clone: the same forward and backward (no shuffle
     * matters: statistics are over the whole batch) */
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 3}), *y = nb_input(g, "y", 1, (int[]){4});
    nb_node *h = nb_layer_apply(nb_model_layer(c, 0), g, x, false);
    nb_node *loss = nb_softmax_cross_entropy(g, nb_layer_apply(nb_model_layer(c, 1), g, h, false), y);
    nb_feed(g, x, xs, 4), nb_feed(g, y, ys, 4);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_backward(g, loss), NB_OK);
    const float *hv = nb_node_value(h);
    double sum = 0, sq = 0;
    for (int i = 0; i < 16; i++) sum += hv[i];
    for (int i = 0; i < 16; i++) sq += (hv[i] - sum / 16) * (hv[i] - sum / 16);
    int dead = 0;
    for (int u = 0; u < 4; u++) {
        bool alive = false;
        for (int b = 0; b < 4; b++) alive = alive || hv[b * 4 + u] != 0;
        dead += !alive;
    }
    cr_assert_geq(dead, 1);
    cr_assert_float_eq(r[0].mean, sum / 16, 1e-5);
    cr_assert_float_eq(r[0].sd, sqrt(sq / 16), 1e-5);
    cr_assert_float_eq(r[0].dead, dead / 4.0, 1e-9);
    cr_assert_float_eq(r[0].saturated, 0, 1e-12);
    for (int l = 0; l < 2; l++) {
        double g2 = 0, w2 = 0;
        for (int t = 0; t < 2; t++) {
            const nb_tensor *w = nb_layer_tensor(nb_model_layer(c, l), t);
            for (size_t i = 0; i < w->size; i++) g2 += (double)w->grad[i] * w->grad[i], w2 += (double)w->data[i] * w->data[i];
        }
        cr_assert_float_eq(r[l].grad, sqrt(g2), 1e-5 * (1 + sqrt(g2)), "layer %d", l);
        cr_assert_float_eq(r[l].ratio, 0.1 * sqrt(g2) / sqrt(w2), 1e-4 * r[l].ratio + 1e-9, "layer %d", l);
        cr_assert_eq(r[l].step, 0);
        cr_assert_eq(r[l].epoch, 1);
    }
    cr_assert_str_eq(r[1].name, "dense_1");
    nb_graph_free(g);
    nb_model_free(m), nb_model_free(c);
    unlink(path), free(path);
}

/* A fit's progress text (verbose) with diagnostics into path. */
static char *fit_text(nb_model *m, const nb_dataset *d, nb_fit_opts o, const char *path, nb_status *st) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    o.out = f, o.verbose = 1, o.diagnose = path;
    *st = nb_fit(m, d, &o, NULL);
    fclose(f);
    return text;
}

/* 60 examples of 20 features from a fixed stream, 3 classes. */
static nb_dataset blobs(void) {
    static float x[60 * 20], y[60];
    nb_rng r;
    nb_rng_seed(&r, 3, 0);
    for (int i = 0; i < 60; i++) {
        y[i] = (float)(i % 3);
        for (int k = 0; k < 20; k++) x[i * 20 + k] = nb_rng_uniform(&r) * 2 - 1 + (k % 3 == i % 3);
    }
    return (nb_dataset){.x = x, .y = y, .n = 60, .dim = 20, .rows = 1, .cols = 20, .n_classes = 3};
}

/* DEPTH layers of 50 with act and init, then Dense(3). */
#define DEPTH 50
static nb_model *deep(const char *act, const char *init) {
    nb_model *m = nb_model_new(1, (int[]){20}, 4);
    for (int i = 0; i < DEPTH; i++) {
        nb_layer_spec s = nb_dense_spec(50, act, init);
        cr_assert_not_null(nb_model_add(m, &s), "%s", nb_last_error());
    }
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 3});
    return m;
}

Test(diagnose, sigmoid_with_unit_normal_weights_warns_of_vanishing_gradients_and_he_relu_does_not) {
    nb_dataset d = blobs();
    char *path = tmp_path("vanish.csv");
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = 1, o.batch_size = 20;
    nb_status st;
    nb_model *bad = deep("sigmoid", "random_normal(0,1)");
    char *text = fit_text(bad, &d, o, path, &st);
    cr_assert_eq(st, NB_OK, "%s", nb_last_error());
    FILE *dump = fopen(path, "r");
    char all[4096] = "";
    fread(all, 1, sizeof all - 1, dump);
    fclose(dump);
    cr_assert(strstr(text, "Warning: vanishing gradients at step 0: the first layer's gradient norm"), "%s\n%s", text, all);
    row r[DEPTH + 8];
    cr_assert_eq(read_rows(path, r, DEPTH + 8), DEPTH + 1); /* step 0 only: once per epoch */
    cr_assert(r[0].grad < 1e-3 * r[DEPTH].grad, "first %g, last %g", r[0].grad, r[DEPTH].grad);
    cr_assert(r[5].saturated > 0.1, "a saturated sigmoid stack: %g", r[5].saturated);
    free(text);
    nb_model *good = deep("relu", "he_normal");
    text = fit_text(good, &d, o, path, &st);
    cr_assert_eq(st, NB_OK);
    cr_assert_null(strstr(text, "vanishing"), "%s", text);
    cr_assert_eq(read_rows(path, r, DEPTH + 8), DEPTH + 1);
    cr_assert(r[0].grad > 1e-2 * r[DEPTH].grad, "He + ReLU: first %g, last %g", r[0].grad, r[DEPTH].grad);
    free(text);
    nb_model_free(bad), nb_model_free(good);
    unlink(path), free(path);
}

Test(diagnose, a_growing_gradient_and_dead_units_are_warned_of) {
    /* a linear unit on x = 1 with MSE at lr 1.5: the error is multiplied by
     * 1 - 4·1.5 = -5 at each step, so is the gradient */
    static float x[8] = {1, 1, 1, 1, 1, 1, 1, 1}, y[8] = {0};
    nb_dataset d = {.x = x, .y = y, .n = 8, .dim = 1, .rows = 1, .cols = 1};
    nb_model *m = nb_model_new(1, (int[]){1}, 1);
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 1});
    nb_layer_tensor(nb_model_layer(m, 0), 0)->data[0] = 1;
    char *path = tmp_path("explode.csv");
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = 1, o.batch_size = 1, o.diagnose_every = 1, o.optimizer.lr = 1.5f;
    o.loss.kind = NB_LOSS_MSE;
    nb_status st;
    char *text = fit_text(m, &d, o, path, &st);
    cr_assert_eq(st, NB_OK, "%s", nb_last_error());
    cr_assert(strstr(text, "Warning: exploding gradients at step 5: layer 'dense'"), "%s", text);
    row r[8];
    cr_assert_eq(read_rows(path, r, 8), 8);
    cr_assert_float_eq(r[1].grad / r[0].grad, 5, 1e-3);
    free(text);
    nb_model_free(m);

    /* every unit's bias far below zero: all dead */
    nb_dataset b = blobs();
    nb_model *relu = deep("relu", "he_normal");
    nb_tensor *bias = nb_layer_tensor(nb_model_layer(relu, 3), 1);
    for (size_t i = 0; i < bias->size; i++) bias->data[i] = -100;
    o = nb_fit_defaults();
    o.epochs = 1, o.batch_size = 20;
    text = fit_text(relu, &b, o, path, &st);
    cr_assert_eq(st, NB_OK);
    cr_assert(strstr(text, "Warning: dying ReLUs at step 0: 100% of layer 'dense_3''s units are 0"), "%s", text);
    free(text);
    nb_model_free(relu);
    unlink(path), free(path);
}

/* A fit of 3 epochs allocates what a fit of 1 does: nothing per step or
 * epoch, diagnostics on or off. */
Test(diagnose, diagnostics_allocate_nothing_per_step_or_epoch) {
    cr_assert(alloc_count_works(), "this build cannot count allocations");
    nb_dataset d = blobs();
    char *path = tmp_path("alloc.csv");
    for (int on = 0; on < 2; on++) {
        unsigned long used[2];
        nb_model *warm = deep("relu", "he_normal"); /* the process's first fit sets up threads and pools */
        nb_fit(warm, &d, &(nb_fit_opts){.epochs = 1, .batch_size = 8, .optimizer = nb_optimizer_defaults(NB_SGD)}, NULL);
        nb_model_free(warm);
        for (int k = 0; k < 2; k++) {
            nb_model *m = deep("relu", "he_normal");
            nb_fit_opts o = nb_fit_defaults();
            o.epochs = k ? 3 : 1, o.batch_size = 8, o.verbose = 0, o.diagnose = on ? path : NULL, o.diagnose_every = 2;
            nb_history h;
            const unsigned long before = alloc_count();
            cr_assert_eq(nb_fit(m, &d, &o, &h), NB_OK, "%s", nb_last_error());
            used[k] = alloc_count() - before;
            nb_history_free(&h);
            nb_model_free(m);
        }
        cr_assert_eq(used[1], used[0], "diagnostics %s: %lu allocations in 3 epochs, %lu in 1", on ? "on" : "off",
                     used[1], used[0]);
    }
    unlink(path), free(path);
}

/* nabla train --diagnose writes the CSV, and with --plot its picture. */
Test(diagnose, nabla_train_diagnose_writes_the_csv_and_with_plot_its_picture, .timeout = 120) {
    char *csv = tmp_path("cli.csv"), *png = tmp_path("cli.png"), *dpng = tmp_path("cli.diagnostics.png");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             NABLA_TOOL " train --epochs 2 --train-size 1100 --threads 1 --quiet --activation sigmoid "
                        "--init 'random_normal(0,1)' --diagnose-every 30 --diagnose %s --plot %s >/dev/null 2>&1",
             csv, png);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    row r[64];
    const int n = read_rows(csv, r, 64);
    /* 1000 training images, batch 32: 32 steps an epoch, 64 in all: steps 0, 30 and 60, 4 layers each */
    cr_assert_eq(n, 12, "%d rows", n);
    cr_assert_eq(r[4].step, 30);
    cr_assert_eq(r[8].epoch, 2);
    cr_assert(r[1].saturated > 0.2, "sigmoid on N(0,1) weights: %g saturated", r[1].saturated);
    cr_assert_eq(access(png, F_OK), 0);
    cr_assert_eq(access(dpng, F_OK), 0, "no %s", dpng);
    /* a file that is not fit's diagnostics is refused, naming the line */
    FILE *f = fopen(csv, "a");
    fprintf(f, "oops\n");
    fclose(f);
    cr_assert_eq(nb_diagnostics_plot(csv, dpng), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "cli.csv:14: not a row of fit's diagnostics"), "%s", nb_last_error());
    unlink(csv), unlink(png), unlink(dpng);
    free(csv), free(png), free(dpng);
}
