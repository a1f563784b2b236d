/* The training loop: fit learns, validation, early stopping with restored
 * weights, schedules, history CSV and plots, MC dropout, evaluate, and a
 * short run on Fashion-MNIST. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "nabla/train.h"

enum { DIM = 12, CLASSES = 3 };

/* Three Gaussian blobs in DIM dimensions; label noise makes a fraction
 * of the labels random. */
static nb_dataset blobs(int n, uint64_t seed, float noise) {
    nb_dataset d = {.n = n, .dim = DIM, .rows = 1, .cols = DIM, .n_classes = CLASSES};
    d.x = malloc(sizeof(float) * (size_t)n * DIM);
    d.y = malloc(sizeof(float) * (size_t)n);
    nb_rng r;
    nb_rng_seed(&r, seed, 3);
    for (int i = 0; i < n; i++) {
        int c = (int)nb_rng_below(&r, CLASSES);
        for (int j = 0; j < DIM; j++) d.x[i * DIM + j] = nb_rng_normal(&r) + (j % CLASSES == c ? 2.0f : 0.0f);
        d.y[i] = nb_rng_uniform(&r) < noise ? (float)nb_rng_below(&r, CLASSES) : (float)c;
    }
    return d;
}

static nb_model *classifier(float dropout, uint64_t seed) {
    nb_model *m = nb_model_new(1, (int[]){DIM}, seed);
    nb_layer_spec h = nb_dense_spec(16, "relu", "he_normal"), out = nb_dense_spec(CLASSES, NULL, NULL);
    nb_model_add(m, &h);
    if (dropout > 0) {
        nb_layer_spec d = nb_dropout_spec(dropout);
        nb_model_add(m, &d);
    }
    cr_assert_not_null(nb_model_add(m, &out), "%s", nb_last_error());
    return m;
}

static nb_fit_opts quiet_opts(int epochs) {
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = epochs;
    o.verbose = 0;
    o.optimizer = nb_optimizer_defaults(NB_ADAM);
    o.optimizer.lr = 0.01f;
    return o;
}

Test(train, fit_learns_and_reports_every_epoch) {
    nb_dataset train = blobs(600, 1, 0), val = blobs(200, 2, 0);
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(5);
    o.validation = &val;
    o.batch_size = 50; /* 12 batches of 50 */
    nb_history h;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK, "%s", nb_last_error());
    cr_assert_eq(h.n_epochs, 5);
    cr_assert(h.epochs[4].has_validation);
    cr_assert_gt(h.epochs[4].val_accuracy, 0.9, "val accuracy %g", h.epochs[4].val_accuracy);
    cr_assert_lt(h.epochs[4].loss, h.epochs[0].loss);
    cr_assert_gt(h.samples_per_second, 0);
    double loss, acc;
    cr_assert_eq(nb_evaluate(m, &val, 64, &loss, &acc), NB_OK);
    cr_assert_float_eq(acc, h.epochs[4].val_accuracy, 1e-9, "evaluate agrees with fit's validation");
    cr_assert_float_eq(loss, h.epochs[4].val_loss, 1e-5);
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&train), nb_dataset_free(&val);
}

Test(train, the_same_seed_gives_the_same_history) {
    nb_dataset train = blobs(300, 1, 0.1f);
    double last[2];
    for (int run = 0; run < 2; run++) {
        nb_model *m = classifier(0.3f, 5);
        nb_fit_opts o = quiet_opts(3);
        o.seed = 9;
        o.validation_split = 0.2f;
        nb_history h;
        cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK, "%s", nb_last_error());
        last[run] = h.epochs[2].val_loss;
        nb_history_free(&h);
        nb_model_free(m);
    }
    cr_assert_eq(last[0], last[1]);
    nb_dataset_free(&train);
}

/* Stops training after the epoch the callback sees */
static bool stop_at_two(const nb_epoch_metrics *e, void *user) {
    (*(int *)user)++;
    return e->epoch < 2;
}

Test(train, a_callback_sees_each_epoch_and_can_stop_training) {
    nb_dataset train = blobs(200, 1, 0);
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(10);
    int calls = 0;
    o.on_epoch = stop_at_two;
    o.user = &calls;
    nb_history h;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK);
    cr_assert_eq(calls, 2);
    cr_assert_eq(h.n_epochs, 2);
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&train);
}

Test(train, early_stopping_restores_the_best_weights) {
    /* random validation labels: the validation loss soon gets worse */
    nb_dataset train = blobs(300, 1, 1.0f), val = blobs(100, 2, 1.0f);
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(60);
    o.optimizer.lr = 0.05f;
    o.validation = &val;
    o.patience = 3;
    o.restore_best = true;
    nb_history h;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK, "%s", nb_last_error());
    cr_assert(h.stopped_early, "ran all %d epochs", h.n_epochs);
    cr_assert_eq(h.n_epochs, h.best_epoch + 3);
    double loss;
    nb_evaluate(m, &val, 32, &loss, NULL);
    cr_assert_float_eq(loss, h.epochs[h.best_epoch - 1].val_loss, 1e-5, "the weights are not the best epoch's");
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&train), nb_dataset_free(&val);
}

Test(train, schedules_set_the_rate_per_epoch) {
    nb_dataset train = blobs(100, 1, 0);
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(4);
    o.optimizer = nb_optimizer_defaults(NB_SGD);
    o.use_schedule = true;
    o.schedule_per_epoch = true;
    o.schedule = nb_schedule_defaults(NB_SCHEDULE_EXPONENTIAL, 0.1f);
    o.schedule.steps = 2; /* lr = 0.1 * 0.1^(epoch/2) */
    nb_history h;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK, "%s", nb_last_error());
    for (int e = 0; e < 4; e++) cr_assert_float_eq(h.epochs[e].lr, 0.1 * pow(0.1, e / 2.0), 1e-7);
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&train);
}

Test(train, history_is_written_as_csv_and_drawn_by_gnuplot) {
    nb_dataset train = blobs(100, 1, 0);
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(3);
    o.validation_split = 0.2f;
    nb_history h;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK);
    char dir[] = "/tmp/nabla-train-XXXXXX", csv[64], png[64], svg[64], bad[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/h.csv", dir), snprintf(png, sizeof png, "%s/h.png", dir);
    snprintf(svg, sizeof svg, "%s/h.svg", dir), snprintf(bad, sizeof bad, "%s/h.gif", dir);
    cr_assert_eq(nb_history_write_csv(&h, csv), NB_OK, "%s", nb_last_error());
    FILE *f = fopen(csv, "r");
    char line[256];
    cr_assert(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n");
    int rows = 0, epoch;
    double loss;
    while (fgets(line, sizeof line, f)) {
        cr_assert_eq(sscanf(line, "%d,%lf", &epoch, &loss), 2);
        cr_assert_float_eq(loss, h.epochs[rows].loss, 1e-5);
        rows++;
    }
    fclose(f);
    cr_assert_eq(rows, 3);
    cr_assert_eq(nb_history_plot(&h, png), NB_OK, "%s", nb_last_error());
    unsigned char magic[8];
    f = fopen(png, "rb");
    cr_assert_eq(fread(magic, 1, 8, f), 8);
    fclose(f);
    cr_assert(memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0, "not a PNG");
    cr_assert_eq(nb_history_plot(&h, svg), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_history_plot(&h, bad), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "must end in .png or .svg"), "%s", nb_last_error());
    unlink(csv), unlink(png), unlink(svg), rmdir(dir);
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&train);
}

Test(train, mc_dropout_varies_between_passes_and_averages_stably) {
    nb_dataset train = blobs(300, 1, 0), test = blobs(50, 3, 0);
    nb_model *m = classifier(0.5f, 5);
    nb_fit_opts o = quiet_opts(5);
    cr_assert_eq(nb_fit(m, &train, &o, NULL), NB_OK);
    float *mean = malloc(sizeof(float) * 50 * CLASSES), *sd = malloc(sizeof(float) * 50 * CLASSES);
    float *mean2 = malloc(sizeof(float) * 50 * CLASSES);
    double acc, acc2, plain;
    cr_assert_eq(nb_predict_mc(m, &test, 16, 200, 1, mean, sd, &acc), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_predict_mc(m, &test, 16, 200, 2, mean2, NULL, &acc2), NB_OK);
    nb_evaluate(m, &test, 16, NULL, &plain);
    double max_sd = 0, max_diff = 0;
    for (int i = 0; i < 50; i++) {
        double s = 0;
        for (int c = 0; c < CLASSES; c++) {
            s += mean[i * CLASSES + c];
            max_sd = fmax(max_sd, sd[i * CLASSES + c]);
            max_diff = fmax(max_diff, fabs(mean[i * CLASSES + c] - mean2[i * CLASSES + c]));
        }
        cr_assert_float_eq(s, 1.0, 1e-5, "mean probabilities of example %d sum to %g", i, s);
    }
    cr_assert_gt(max_sd, 0.01, "the passes did not vary");
    cr_assert_lt(max_diff, 0.1, "two seeds' means differ by %g", max_diff);
    cr_assert_gt(acc, 0.8);
    cr_log_info("MC accuracy %.3f (seed 2: %.3f), plain %.3f", acc, acc2, plain);
    free(mean), free(sd), free(mean2);
    nb_model_free(m);
    nb_dataset_free(&train), nb_dataset_free(&test);
}

Test(train, bad_options_and_mismatched_data_are_refused) {
    nb_dataset train = blobs(50, 1, 0), wide = {0};
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(0);
    cr_assert_eq(nb_fit(m, &train, &o, NULL), NB_ERROR);
    cr_assert_str_eq(nb_last_error(), "fit: epochs is 0, must be >= 1");
    o = quiet_opts(1);
    o.validation_split = 1.5f;
    cr_assert_eq(nb_fit(m, &train, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "validation split 1.5 outside [0,1)"), "%s", nb_last_error());
    o = quiet_opts(1);
    o.optimizer.lr = -1;
    cr_assert_eq(nb_fit(m, &train, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "lr"), "%s", nb_last_error());
    nb_model *other = nb_model_new(1, (int[]){DIM + 1}, 1);
    nb_layer_spec d = nb_dense_spec(3, NULL, NULL);
    nb_model_add(other, &d);
    o = quiet_opts(1);
    cr_assert_eq(nb_fit(other, &train, &o, NULL), NB_ERROR);
    cr_assert_str_eq(nb_last_error(), "fit: the data has 12 features per example, the model takes 13");
    train.y[7] = 5; /* beyond the 3 classes */
    cr_assert_eq(nb_fit(m, &train, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "softmax_cross_entropy: label 5"), "%s", nb_last_error());
    cr_assert_eq(nb_evaluate(m, &wide, 32, NULL, NULL), NB_ERROR);
    nb_model_free(m), nb_model_free(other);
    nb_dataset_free(&train);
}

Test(train, a_short_run_on_fashion_mnist_reaches_80_percent, .timeout = 120) {
    nb_dataset train, test, sub, test_sub;
    cr_assert_eq(nb_load_mnist_dir(NULL, &train, &test), NB_OK, "%s (run scripts/setup.sh)", nb_last_error());
    cr_assert_eq(nb_dataset_slice(&train, 0, 10000, &sub), NB_OK);
    cr_assert_eq(nb_dataset_slice(&test, 0, 2000, &test_sub), NB_OK);
    nb_dataset_free(&train), nb_dataset_free(&test);
    nb_dataset_scale(&sub, 1.0f / 255), nb_dataset_scale(&test_sub, 1.0f / 255);
    nb_model *m = nb_model_new(2, (int[]){28, 28}, 42);
    nb_layer_spec f = {.kind = NB_LAYER_FLATTEN}, h = nb_dense_spec(100, "relu", "he_normal"),
                  out = nb_dense_spec(10, NULL, "he_normal");
    nb_model_add(m, &f), nb_model_add(m, &h), nb_model_add(m, &out);
    nb_fit_opts o = quiet_opts(3);
    o.optimizer.lr = 0.002f;
    cr_assert_eq(nb_fit(m, &sub, &o, NULL), NB_OK, "%s", nb_last_error());
    double acc;
    cr_assert_eq(nb_evaluate(m, &test_sub, 256, NULL, &acc), NB_OK);
    cr_log_info("Fashion-MNIST, 10,000 images, 3 epochs: test accuracy %.4f", acc);
    cr_assert_gt(acc, 0.80, "test accuracy %.4f", acc);
    nb_model_free(m);
    nb_dataset_free(&sub), nb_dataset_free(&test_sub);
}

#include "alloc_count.h"

/* Counts allocations between the ends of epochs 2 and 3: a whole epoch of
 * fit's steps, optimizer updates, constraints and validation. */
static bool count_epoch_allocations(const nb_epoch_metrics *e, void *user) {
    unsigned long *counts = user;
    if (e->epoch == 2) counts[0] = alloc_count();
    if (e->epoch == 3) counts[1] = alloc_count();
    return true;
}

Test(train, an_epoch_of_fit_allocates_nothing_once_warmed_up) {
    cr_assert(alloc_count_works(), "this build cannot count allocations");
    nb_dataset train = blobs(300, 1, 0), val = blobs(100, 2, 0);
    nb_model *m = nb_model_new(1, (int[]){DIM}, 1);
    nb_layer_spec h = nb_dense_spec(16, NULL, "he_normal"), bn = nb_batch_norm_spec(), a = nb_activation_spec("elu"),
                  d = nb_dropout_spec(0.2f), out = nb_dense_spec(CLASSES, NULL, NULL);
    h.no_bias = true;
    h.max_norm = 2.0f;
    h.kernel_reg.l2 = 1e-4f;
    nb_model_add(m, &h), nb_model_add(m, &bn), nb_model_add(m, &a), nb_model_add(m, &d), nb_model_add(m, &out);
    unsigned long counts[2] = {0, 0};
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        nb_fit_opts o = quiet_opts(3);
        o.optimizer = nb_optimizer_defaults(NB_NADAM);
        o.optimizer.clip_global_norm = 1.0f;
        o.use_schedule = true;
        o.schedule = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 0.01f);
        o.validation = &val;
        o.on_epoch = count_epoch_allocations;
        o.user = counts;
        cr_assert_eq(nb_fit(m, &train, &o, NULL), NB_OK, "%s", nb_last_error());
        cr_assert_eq(counts[1] - counts[0], 0, "%lu allocations in one epoch at %d threads", counts[1] - counts[0],
                     threads);
    }
    nb_model_free(m);
    nb_dataset_free(&train), nb_dataset_free(&val);
}

Test(train, early_stopping_can_watch_validation_accuracy) {
    nb_dataset train = blobs(300, 1, 1.0f), val = blobs(100, 2, 1.0f);
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(40);
    o.optimizer.lr = 0.05f;
    o.validation = &val;
    o.patience = 2;
    o.restore_best = true;
    o.monitor = NB_MONITOR_VAL_ACCURACY;
    nb_history h;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK, "%s", nb_last_error());
    cr_assert(h.stopped_early);
    double best = 0;
    for (int e = 0; e < h.n_epochs; e++) best = fmax(best, h.epochs[e].val_accuracy);
    cr_assert_eq(h.epochs[h.best_epoch - 1].val_accuracy, best, "best epoch is not the most accurate");
    double acc;
    nb_evaluate(m, &val, 32, NULL, &acc);
    cr_assert_float_eq(acc, best, 1e-9, "restored weights are not the most accurate epoch's");
    o.monitor = (nb_monitor)9;
    cr_assert_eq(nb_fit(m, &train, &o, NULL), NB_ERROR);
    cr_assert_str_eq(nb_last_error(), "fit: monitor 9 is not an nb_monitor");
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&train), nb_dataset_free(&val);
}

Test(train, a_missing_or_failing_gnuplot_is_an_error_not_a_crash) {
    nb_dataset train = blobs(60, 1, 0);
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(2);
    nb_history h;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK);
    char dir[] = "/tmp/nabla-gp-XXXXXX", fake[64], png[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(png, sizeof png, "%s/h.png", dir);
    setenv("PATH", dir, 1); /* no gnuplot at all */
    cr_assert_eq(nb_history_plot(&h, png), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "gnuplot is not installed"), "%s", nb_last_error());
    /* a gnuplot that dies at once: writing to it must not kill us */
    snprintf(fake, sizeof fake, "%s/gnuplot", dir);
    FILE *f = fopen(fake, "w");
    fprintf(f, "#!/bin/sh\nexit 3\n");
    fclose(f);
    chmod(fake, 0755);
    setenv("PATH", "/usr/bin:/bin", 1);
    char path[256];
    snprintf(path, sizeof path, "%s:/usr/bin:/bin", dir);
    setenv("PATH", path, 1);
    cr_assert_eq(nb_history_plot(&h, png), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "gnuplot failed"), "%s", nb_last_error());
    cr_assert_neq(access(png, F_OK), 0, "a failed plot left a file");
    unlink(fake), rmdir(dir);
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&train);
}

/* Issue 10's first hole: a newline in a plot's name ended gnuplot's quoted
 * string, and a line starting with '!' ran a shell command. The name never
 * reaches gnuplot now: any name a file system takes is drawn to, and
 * nothing runs. */
Test(train, a_plot_name_with_gnuplot_commands_in_it_runs_nothing) {
    nb_dataset train = blobs(60, 1, 0);
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(2);
    nb_history h;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK);
    char dir[] = "/tmp/nabla-inject-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chdir(dir), 0); /* the attack's file lands in the working folder */
    const char *png = "x\n!touch PWNED\n.png", *quoted = "it's \"q\".svg"; /* quotes are fine too */
    cr_assert_eq(nb_history_plot(&h, png), NB_OK, "%s", nb_last_error());
    cr_assert_neq(access("PWNED", F_OK), 0, "a command in the plot's name ran");
    unsigned char magic[8];
    FILE *f = fopen(png, "rb");
    cr_assert_not_null(f, "the picture is at the odd name itself");
    cr_assert_eq(fread(magic, 1, 8, f), 8);
    fclose(f);
    cr_assert(memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0, "not a PNG");
    cr_assert_eq(nb_history_plot(&h, quoted), NB_OK, "%s", nb_last_error());
    cr_assert_eq(access(quoted, F_OK), 0);
    unlink(png), unlink(quoted), chdir("/"), rmdir(dir);
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&train);
}

/* A rate far too high: the loss turns NaN or infinite within a few steps.
 * fit stops there (Keras's TerminateOnNaN, on by default), names the epoch,
 * the step and where the first non-finite value is, and keeps the epochs
 * before it in the history; allow_nonfinite trains on. */
Test(train, a_diverging_fit_stops_at_the_first_non_finite_loss_and_says_where) {
    nb_dataset train = blobs(400, 1, 0);
    nb_model *m = classifier(0, 5);
    nb_fit_opts o = quiet_opts(3);
    o.optimizer = nb_optimizer_defaults(NB_SGD);
    o.optimizer.lr = 1e6f;
    nb_history h;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_ERROR);
    const char *msg = nb_last_error();
    cr_assert(strstr(msg, "fit: the loss is") && strstr(msg, "at epoch 1, step"), "%s", msg);
    cr_assert(strstr(msg, "not finite") || strstr(msg, "non-finite value"), "where is not said: %s", msg);
    cr_assert(h.diverged);
    cr_assert_eq(h.diverged_epoch, 1);
    cr_assert(h.diverged_step >= 1 && h.diverged_step <= 13, "step %ld", h.diverged_step);
    cr_assert_eq(h.n_epochs, 0);
    nb_history_free(&h);
    nb_model_free(m);

    m = classifier(0, 5);
    o.allow_nonfinite = true;
    cr_assert_eq(nb_fit(m, &train, &o, &h), NB_OK, "%s", nb_last_error());
    cr_assert(!h.diverged);
    cr_assert_eq(h.n_epochs, 3);
    cr_assert(!isfinite(h.epochs[2].loss), "the loss was meant to diverge: %g", h.epochs[2].loss);
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&train);
}

/* Issue 10, hole 8: an input shape whose product passes 2^63 (a model file
 * can declare one) overflowed a signed product (UBSan) instead of being
 * refused. */
Test(train, an_input_shape_too_large_to_count_is_refused) {
    nb_model *m = nb_model_new(3, (int[]){2147483647, 2147483647, 2147483647}, 1);
    cr_assert_not_null(m, "%s", nb_last_error());
    float x[4] = {0}, y[1] = {0};
    nb_dataset d = {.x = x, .y = y, .n = 1, .dim = 4, .rows = 1, .cols = 4};
    double loss, acc;
    cr_assert_eq(nb_evaluate(m, &d, 1, &loss, &acc), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "more elements than a long holds"), "%s", nb_last_error());
    nb_model_free(m);
}

/* Issue 8: a softmax on the last layer before fit's from-logits loss
 * trained silently to a far worse accuracy. fit now takes the softmax's
 * input as the logits (Keras's from_logits=False): the same weights, bit
 * for bit, as the model without the softmax. */
Test(train, a_softmax_output_layer_trains_like_logits) {
    nb_dataset train = blobs(300, 1, 0.1f);
    nb_model *m[2];
    for (int k = 0; k < 2; k++) {
        m[k] = nb_model_new(1, (int[]){DIM}, 9);
        nb_layer_spec h = nb_dense_spec(16, "relu", "he_normal"), out = nb_dense_spec(CLASSES, k ? "softmax" : NULL, NULL);
        nb_model_add(m[k], &h);
        cr_assert_not_null(nb_model_add(m[k], &out), "%s", nb_last_error());
        nb_fit_opts o = quiet_opts(2);
        cr_assert_eq(nb_fit(m[k], &train, &o, NULL), NB_OK, "%s", nb_last_error());
    }
    nb_tensor *const *a, *const *b;
    int n = nb_model_tensors(m[0], &a);
    cr_assert_eq(nb_model_tensors(m[1], &b), n);
    for (int i = 0; i < n; i++)
        cr_assert(memcmp(a[i]->data, b[i]->data, a[i]->size * sizeof(float)) == 0, "%s differs", a[i]->name);
    double acc[2];
    for (int k = 0; k < 2; k++) cr_assert_eq(nb_evaluate(m[k], &train, 64, NULL, &acc[k]), NB_OK);
    cr_assert_eq(acc[0], acc[1]);
    nb_model_free(m[0]), nb_model_free(m[1]);
    nb_dataset_free(&train);
}

Test(train, predict_gives_the_last_layers_outputs_for_every_example) {
    nb_dataset train = blobs(203, 1, 0);
    nb_model *m = nb_model_new(1, (int[]){DIM}, 9);
    nb_layer_spec h = nb_dense_spec(16, "relu", "he_normal"), out = nb_dense_spec(CLASSES, "softmax", NULL);
    nb_model_add(m, &h);
    nb_model_add(m, &out);
    nb_fit_opts o = quiet_opts(2);
    cr_assert_eq(nb_fit(m, &train, &o, NULL), NB_OK, "%s", nb_last_error());
    float *p = malloc(sizeof(float) * 203 * CLASSES), *q = malloc(sizeof(float) * 203 * CLASSES);
    cr_assert_eq(nb_predict(m, &train, 64, p), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_predict(m, &train, 7, q), NB_OK, "%s", nb_last_error());
    long correct = 0;
    for (int i = 0; i < 203; i++) {
        double sum = 0;
        int best = 0;
        for (int c = 0; c < CLASSES; c++) {
            sum += p[i * CLASSES + c];
            cr_assert_float_eq(p[i * CLASSES + c], q[i * CLASSES + c], 1e-6, "example %d depends on the batch", i);
            if (p[i * CLASSES + c] > p[i * CLASSES + best]) best = c;
        }
        cr_assert_float_eq(sum, 1.0, 1e-5, "example %d: the softmax's probabilities sum to %g", i, sum);
        correct += best == (int)train.y[i];
    }
    double acc;
    cr_assert_eq(nb_evaluate(m, &train, 64, NULL, &acc), NB_OK);
    cr_assert_float_eq((double)correct / 203, acc, 1e-12);
    nb_dataset wrong = train;
    wrong.dim = DIM - 1;
    cr_assert_eq(nb_predict(m, &wrong, 64, p), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "predict: the data has 11 features per example, the model takes 12"), "%s",
              nb_last_error());
    cr_assert_eq(nb_predict(m, &train, 64, NULL), NB_ERROR);
    free(p), free(q);
    nb_model_free(m);
    nb_dataset_free(&train);
}

/* ---- losses other than softmax cross-entropy (issue 8, item 3) ---- */

/* A model whose single output is the sum of its DIM inputs: Dense(1), no
 * bias, kernel all ones (set after construction). */
static nb_model *summer(void) {
    nb_model *m = nb_model_new(1, (int[]){DIM}, 3);
    nb_layer_spec s = nb_dense_spec(1, NULL, NULL);
    s.no_bias = true;
    nb_layer *l = nb_model_add(m, &s);
    cr_assert_not_null(l, "%s", nb_last_error());
    nb_tensor *k = nb_layer_tensor(l, 0);
    for (size_t i = 0; i < k->size; i++) k->data[i] = 1.0f;
    return m;
}

Test(train, every_loss_and_its_metric_match_their_formulas) {
    nb_dataset d = blobs(50, 4, 0);
    for (int i = 0; i < d.n; i++) d.y[i] = (float)(i % 7) - 2.5f; /* targets near the sums */
    nb_model *m = summer();
    double want[5] = {0}, metric[5] = {0};
    for (int i = 0; i < d.n; i++) {
        double s = 0;
        for (int j = 0; j < DIM; j++) s += d.x[i * DIM + j];
        const double t = d.y[i], e = s - t, a = fabs(e), tb = i % 2; /* binary targets: 0/1 */
        want[NB_LOSS_BINARY] += fmax(s, 0) - s * tb + log1p(exp(-fabs(s)));
        metric[NB_LOSS_BINARY] += (s > 0) == (tb >= 0.5);
        want[NB_LOSS_MSE] += e * e;
        want[NB_LOSS_MAE] += a;
        want[NB_LOSS_HUBER] += a <= 2.0 ? 0.5 * e * e : 2.0 * (a - 1.0); /* delta 2 */
        metric[NB_LOSS_MSE] += a;
    }
    for (int k = NB_LOSS_BINARY; k <= NB_LOSS_HUBER; k++) {
        nb_dataset dk = d;
        float *yb = NULL;
        if (k == NB_LOSS_BINARY) {
            yb = malloc(sizeof(float) * (size_t)d.n);
            for (int i = 0; i < d.n; i++) yb[i] = (float)(i % 2);
            dk.y = yb;
        }
        nb_loss_config lc = {.kind = (nb_loss_kind)k, .huber_delta = 2.0f};
        double loss, got;
        cr_assert_eq(nb_evaluate_loss(m, &dk, 16, &lc, &loss, &got), NB_OK, "%s", nb_last_error());
        cr_assert_float_eq(loss, want[k] / d.n, 1e-4 * (1 + want[k] / d.n), "loss %d: %g, want %g", k, loss,
                           want[k] / d.n);
        const double wm = k == NB_LOSS_BINARY ? metric[NB_LOSS_BINARY] / d.n : metric[NB_LOSS_MSE] / d.n;
        cr_assert_float_eq(got, wm, 1e-4 * (1 + wm), "metric %d: %g, want %g", k, got, wm);
        free(yb);
    }
    nb_model_free(m);
    nb_dataset_free(&d);
}

/* Two blobs, a sigmoid output: binary cross-entropy trains it. */
Test(train, binary_cross_entropy_trains_a_sigmoid_output_to_a_stated_loss) {
    nb_dataset d = blobs(600, 2, 0);
    for (int i = 0; i < d.n; i++) d.y[i] = d.y[i] == 1.0f ? 1.0f : 0.0f; /* class 1 against the rest */
    nb_model *m = nb_model_new(1, (int[]){DIM}, 5);
    nb_layer_spec h = nb_dense_spec(16, "relu", "he_normal"), out = nb_dense_spec(1, "sigmoid", NULL);
    nb_model_add(m, &h);
    nb_model_add(m, &out);
    nb_fit_opts o = quiet_opts(8);
    o.loss.kind = NB_LOSS_BINARY;
    nb_history h_;
    cr_assert_eq(nb_fit(m, &d, &o, &h_), NB_OK, "%s", nb_last_error());
    cr_assert_str_eq(h_.metric, "accuracy");
    const nb_epoch_metrics *last = &h_.epochs[h_.n_epochs - 1];
    cr_assert(last->loss < 0.1, "loss %g after 8 epochs", last->loss);
    cr_assert(last->accuracy > 0.97, "accuracy %g", last->accuracy);
    nb_history_free(&h_);
    nb_model_free(m);
    nb_dataset_free(&d);
}

/* An autoencoder: DIM -> 6 -> DIM, its target its input, MSE. */
Test(train, mse_trains_an_autoencoder_on_its_own_input_to_a_stated_loss) {
    nb_dataset d = blobs(600, 6, 0);
    nb_model *m = nb_model_new(1, (int[]){DIM}, 5);
    nb_layer_spec enc = nb_dense_spec(6, "selu", "lecun_normal"), dec = nb_dense_spec(DIM, NULL, NULL);
    nb_model_add(m, &enc);
    nb_model_add(m, &dec);
    nb_fit_opts o = quiet_opts(20);
    o.loss = (nb_loss_config){.kind = NB_LOSS_MSE, .target_is_input = true};
    nb_history h_;
    cr_assert_eq(nb_fit(m, &d, &o, &h_), NB_OK, "%s", nb_last_error());
    cr_assert_str_eq(h_.metric, "mae");
    const double first = h_.epochs[0].loss, last = h_.epochs[h_.n_epochs - 1].loss;
    /* the inputs' variance is about 1.2: a blob's mean explains part of it,
     * the 6 units the rest of the noise only partly */
    cr_assert(last < 0.75, "MSE %g after 20 epochs (first %g)", last, first);
    cr_assert(last < 0.8 * first, "MSE %g after 20 epochs, first %g", last, first);
    nb_history_free(&h_);
    nb_model_free(m);
    nb_dataset_free(&d);
}

Test(train, losses_that_do_not_fit_the_model_or_the_data_are_refused) {
    nb_dataset d = blobs(40, 1, 0);
    nb_model *m = classifier(0, 5); /* 3 outputs */
    nb_fit_opts o = quiet_opts(1);
    o.loss.kind = NB_LOSS_BINARY;
    cr_assert_eq(nb_fit(m, &d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "has 3 values per example; a target in y is 1"), "%s", nb_last_error());
    o.loss = (nb_loss_config){.kind = NB_LOSS_SPARSE_CATEGORICAL, .target_is_input = true};
    cr_assert_eq(nb_fit(m, &d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "class labels cannot be the input"), "%s", nb_last_error());
    o.loss = (nb_loss_config){.kind = NB_LOSS_MSE, .target_is_input = true};
    cr_assert_eq(nb_fit(m, &d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "its target, the input, has 12"), "%s", nb_last_error());
    o.loss = (nb_loss_config){.kind = (nb_loss_kind)9};
    cr_assert_eq(nb_fit(m, &d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "loss kind 9"), "%s", nb_last_error());
    nb_model *r = summer();
    o.loss = (nb_loss_config){.kind = NB_LOSS_MAE};
    o.monitor = NB_MONITOR_VAL_ACCURACY;
    cr_assert_eq(nb_fit(r, &d, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "accuracy monitor with a regression loss"), "%s", nb_last_error());
    nb_model_free(r);
    nb_model_free(m);
    nb_dataset_free(&d);
}

/* ---- resuming a killed run (issue 8: same bits as never stopped) ---- */

static bool die_after_epoch_2(const nb_epoch_metrics *m, void *user) {
    (void)user;
    if (m->epoch == 2) _exit(0); /* a crash: the backup of epoch 2 is on disk */
    return true;
}

/* Dropout (the random stream), Nadam (arrays, steps and its product), a
 * 1cycle schedule over steps, validation, early stopping with the best
 * weights kept. */
static nb_fit_opts resumable_opts(const char *backup) {
    nb_fit_opts o = quiet_opts(4);
    o.optimizer = nb_optimizer_defaults(NB_NADAM);
    o.use_schedule = true;
    o.schedule = nb_schedule_defaults(NB_SCHEDULE_ONECYCLE, 0.01f);
    o.validation_split = 0.2f;
    o.patience = 3, o.restore_best = true;
    o.backup = backup;
    return o;
}

/* Runs a fit with backup that dies after epoch 2, in a child forked before
 * this process has started any thread (libgomp's pool does not survive a
 * fork). */
static void crash_after_epoch_2(const nb_dataset *train, const char *backup) {
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        nb_model *m = classifier(0.2f, 5);
        nb_fit_opts k = resumable_opts(backup);
        k.on_epoch = die_after_epoch_2;
        nb_fit(m, train, &k, NULL);
        _exit(3); /* never reached */
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the run did not die after epoch 2");
    cr_assert_eq(access(backup, F_OK), 0, "no backup after epoch 2");
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    cr_assert(a && b);
    char buf[1 << 16];
    for (size_t n; (n = fread(buf, 1, sizeof buf, a)) > 0;) fwrite(buf, 1, n, b);
    fclose(a), fclose(b);
}

Test(train, a_killed_run_resumed_from_its_backup_ends_with_the_same_bits) {
    nb_dataset train = blobs(300, 2, 0.1f);
    char dir[] = "/tmp/nabla-backup-XXXXXX", backup[96], spare[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(backup, sizeof backup, "%s/run.backup", dir);
    snprintf(spare, sizeof spare, "%s/spare.backup", dir);
    crash_after_epoch_2(&train, backup);
    copy_file(backup, spare);

    nb_model *straight = classifier(0.2f, 5);
    nb_fit_opts o = resumable_opts(NULL);
    nb_history h1;
    cr_assert_eq(nb_fit(straight, &train, &o, &h1), NB_OK, "%s", nb_last_error());

    nb_model *resumed = classifier(0.2f, 5); /* fresh weights: the backup must replace them */
    o = resumable_opts(backup);
    nb_history h2;
    cr_assert_eq(nb_fit(resumed, &train, &o, &h2), NB_OK, "%s", nb_last_error());
    cr_assert_neq(access(backup, F_OK), 0, "the backup outlived the run it saved");
    nb_tensor *const *a, *const *b;
    int n = nb_model_tensors(straight, &a);
    cr_assert_eq(nb_model_tensors(resumed, &b), n);
    for (int i = 0; i < n; i++)
        cr_assert(memcmp(a[i]->data, b[i]->data, a[i]->size * sizeof(float)) == 0, "%s differs", a[i]->name);
    cr_assert_eq(h2.n_epochs, h1.n_epochs);
    cr_assert_eq(h2.best_epoch, h1.best_epoch);
    for (int e = 0; e < h1.n_epochs; e++) {
        cr_assert(h1.epochs[e].loss == h2.epochs[e].loss, "epoch %d: loss %.17g vs %.17g", e + 1, h1.epochs[e].loss,
                  h2.epochs[e].loss);
        cr_assert(h1.epochs[e].val_loss == h2.epochs[e].val_loss, "epoch %d: val_loss differs", e + 1);
        cr_assert(h1.epochs[e].lr == h2.epochs[e].lr, "epoch %d: lr differs", e + 1);
    }
    nb_history_free(&h1), nb_history_free(&h2);
    nb_model_free(straight), nb_model_free(resumed);

    /* a backup from another configuration is refused, not half-used */
    nb_model *other = classifier(0.2f, 5);
    o = resumable_opts(spare);
    o.batch_size = 16;
    cr_assert_eq(nb_fit(other, &train, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "batch 32") && strstr(nb_last_error(), "batch 16"), "%s", nb_last_error());
    nb_model_free(other);
    unlink(spare), rmdir(dir);
    nb_dataset_free(&train);
}
