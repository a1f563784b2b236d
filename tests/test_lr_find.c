/* The learning-rate finder (nb_lr_find): the rate it sets at each step,
 * its stop on divergence, a model left as it was, a suggestion below the
 * rate where gradient descent diverges on linear regression, refused
 * options, and its CSV. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "nabla/train.h"

enum { D = 3, N = 64 };

/* y = x·(1, -2, 0.5) + 0.3 + noise, with x of unequal scales so the
 * Hessian is not a multiple of the identity. */
static nb_dataset regression_data(void) {
    nb_dataset d = {.n = N, .dim = D, .rows = 1, .cols = D};
    d.x = malloc(sizeof(float) * N * D);
    d.y = malloc(sizeof(float) * N);
    cr_assert(d.x && d.y);
    nb_rng r;
    nb_rng_seed(&r, 7, 1);
    const float w[D] = {1, -2, 0.5f}, scale[D] = {1, 0.5f, 2};
    for (int i = 0; i < N; i++) {
        float s = 0.3f + 0.1f * nb_rng_normal(&r);
        for (int j = 0; j < D; j++) {
            d.x[i * D + j] = scale[j] * nb_rng_normal(&r);
            s += w[j] * d.x[i * D + j];
        }
        d.y[i] = s;
    }
    return d;
}

/* The largest eigenvalue of the Hessian of the full-batch MSE of a linear
 * model, (2/n)·Σ x̃x̃ᵀ with x̃ = (x, 1), by power iteration in double:
 * gradient descent on it diverges for rates above 2/L. */
static double hessian_top(const nb_dataset *d) {
    double h[D + 1][D + 1] = {{0}}, v[D + 1] = {1, 1, 1, 1}, lambda = 0;
    for (int i = 0; i < d->n; i++)
        for (int a = 0; a <= D; a++)
            for (int b = 0; b <= D; b++)
                h[a][b] += 2.0 / d->n * (a < D ? d->x[i * D + a] : 1.0) * (b < D ? d->x[i * D + b] : 1.0);
    for (int it = 0; it < 500; it++) {
        double u[D + 1] = {0}, norm = 0;
        for (int a = 0; a <= D; a++)
            for (int b = 0; b <= D; b++) u[a] += h[a][b] * v[b];
        for (int a = 0; a <= D; a++) norm += u[a] * u[a];
        norm = sqrt(norm);
        for (int a = 0; a <= D; a++) v[a] = u[a] / norm;
        lambda = norm;
    }
    return lambda;
}

static nb_model *linear_model(void) {
    nb_model *m = nb_model_new(1, (int[]){D}, 5);
    nb_layer_spec s = nb_dense_spec(1, NULL, "glorot_uniform");
    cr_assert(m && nb_model_add(m, &s));
    return m;
}

/* Full-batch SGD on the MSE: each step is one step of gradient descent. */
static nb_fit_opts full_batch_sgd(void) {
    nb_fit_opts f = nb_fit_defaults();
    f.batch_size = N;
    f.optimizer = nb_optimizer_defaults(NB_SGD);
    f.loss = (nb_loss_config){.kind = NB_LOSS_MSE};
    return f;
}

Test(lr_find, the_rate_grows_exponentially_from_lr_min_to_lr_max) {
    nb_dataset d = regression_data();
    nb_model *m = linear_model();
    nb_fit_opts f = full_batch_sgd();
    nb_lr_find_opts o = nb_lr_find_defaults();
    o.lr_min = 1e-6, o.lr_max = 1e-3, o.steps = 37, o.fit = &f; /* far below 2/L: no divergence */
    nb_lr_find_result r;
    cr_assert_eq(nb_lr_find(m, &d, &o, &r), NB_OK, "%s", nb_last_error());
    cr_assert_eq(r.n, 37);
    cr_assert_eq(r.steps, 37);
    cr_assert(!r.diverged);
    for (long t = 0; t < r.n; t++) {
        double want = 1e-6 * pow(1e-3 / 1e-6, (double)t / 36.0);
        cr_assert(fabs(r.lr[t] - want) <= 1e-12 * want, "step %ld: lr %.17g, want %.17g", t, r.lr[t], want);
        cr_assert(isfinite(r.loss[t]) && isfinite(r.smoothed[t]));
    }
    cr_assert(fabs(r.lr[36] - 1e-3) <= 1e-15);
    /* a rate this small barely moves the loss: the smoothed curve starts at the first loss */
    cr_assert_float_eq(r.smoothed[0], r.loss[0], 1e-12);
    nb_lr_find_result_free(&r);
    nb_model_free(m);
    nb_dataset_free(&d);
}

Test(lr_find, one_epoch_by_default_and_across_epochs_when_asked) {
    nb_dataset d = regression_data();
    nb_model *m = linear_model();
    nb_fit_opts f = full_batch_sgd();
    f.batch_size = 10; /* 64 examples: 7 batches, the last of 4 */
    nb_lr_find_opts o = nb_lr_find_defaults();
    o.lr_min = 1e-6, o.lr_max = 1e-4, o.fit = &f;
    nb_lr_find_result r;
    cr_assert_eq(nb_lr_find(m, &d, &o, &r), NB_OK, "%s", nb_last_error());
    cr_assert_eq(r.steps, 7);
    cr_assert_eq(r.n, 7);
    nb_lr_find_result_free(&r);
    o.steps = 30; /* four epochs and a bit */
    cr_assert_eq(nb_lr_find(m, &d, &o, &r), NB_OK, "%s", nb_last_error());
    cr_assert_eq(r.n, 30);
    nb_lr_find_result_free(&r);
    nb_model_free(m);
    nb_dataset_free(&d);
}

Test(lr_find, stops_once_the_smoothed_loss_passes_four_times_its_best) {
    nb_dataset d = regression_data();
    nb_model *m = linear_model();
    nb_fit_opts f = full_batch_sgd();
    const double diverge_at = 2 / hessian_top(&d);
    nb_lr_find_opts o = nb_lr_find_defaults();
    o.lr_min = diverge_at * 0.5, o.lr_max = diverge_at * 1.5, o.steps = 300, o.fit = &f;
    o.smoothing = 0.9; /* past 2/L the loss climbs a little per step: 4x and 8x are steps apart */
    nb_lr_find_result r;
    cr_assert_eq(nb_lr_find(m, &d, &o, &r), NB_OK, "%s", nb_last_error());
    cr_assert(r.diverged);
    cr_assert(r.n < 300 && r.n > 1, "%ld steps", r.n);
    /* each step before the last stayed within 4x the best so far; the last did not */
    double best = INFINITY;
    for (long t = 0; t < r.n; t++) {
        best = fmin(best, r.smoothed[t]);
        bool over = !isfinite(r.smoothed[t]) || r.smoothed[t] > 4 * best;
        cr_assert_eq(over, t == r.n - 1, "step %ld: smoothed %g, best %g", t, r.smoothed[t], best);
    }
    /* the loss climbs only past the rate where gradient descent diverges */
    cr_assert(r.lr[r.n - 1] > diverge_at, "stopped at %g, diverges from %g", r.lr[r.n - 1], diverge_at);
    cr_assert_eq(r.smoothed[r.best], best);
    const long n4 = r.n;
    nb_lr_find_result_free(&r);

    /* a larger factor runs on longer */
    o.diverge = 100;
    cr_assert_eq(nb_lr_find(m, &d, &o, &r), NB_OK, "%s", nb_last_error());
    cr_assert(r.n > n4, "%ld steps with 100x, %ld with 4x", r.n, n4);
    nb_lr_find_result_free(&r);
    nb_model_free(m);
    nb_dataset_free(&d);
}

Test(lr_find, suggests_a_rate_below_where_gradient_descent_diverges) {
    nb_dataset d = regression_data();
    nb_model *m = linear_model();
    nb_fit_opts f = full_batch_sgd();
    const double diverge_at = 2 / hessian_top(&d);
    nb_lr_find_opts o = nb_lr_find_defaults();
    o.lr_min = diverge_at * 1e-5, o.lr_max = diverge_at * 100, o.steps = 400, o.fit = &f;
    nb_lr_find_result r;
    cr_assert_eq(nb_lr_find(m, &d, &o, &r), NB_OK, "%s", nb_last_error());
    cr_assert(r.suggested_lr < diverge_at, "suggested %g, diverges from %g", r.suggested_lr, diverge_at);
    /* and not uselessly small: within two decades of it */
    cr_assert(r.suggested_lr > diverge_at / 100, "suggested %g, diverges from %g", r.suggested_lr, diverge_at);
    cr_assert_float_eq(r.suggested_lr, r.min_lr / 10, 1e-15);
    cr_assert_eq(r.min_lr, r.lr[r.best]);
    cr_assert(r.steepest_lr <= r.min_lr && r.steepest_lr >= o.lr_min);
    /* the loss at the minimum is far below the start's */
    cr_assert(r.smoothed[r.best] < 0.1 * r.smoothed[0], "%g vs %g", r.smoothed[r.best], r.smoothed[0]);
    nb_lr_find_result_free(&r);
    nb_model_free(m);
    nb_dataset_free(&d);
}

/* Two hidden layers with batch norm and dropout: weights, moving
 * statistics and the dropout stream could all be touched. */
static nb_model *mlp(void) {
    nb_model *m = nb_model_new(1, (int[]){D}, 11);
    nb_layer_spec h = nb_dense_spec(16, "relu", "he_normal"), bn = nb_batch_norm_spec(), dr = nb_dropout_spec(0.3f),
                  out = nb_dense_spec(1, NULL, NULL);
    cr_assert(nb_model_add(m, &h) && nb_model_add(m, &bn) && nb_model_add(m, &dr) && nb_model_add(m, &out));
    return m;
}

static void assert_same_bits(const nb_model *a, const nb_model *b) {
    nb_tensor *const *ta, *const *tb;
    int na = nb_model_tensors(a, &ta), nb = nb_model_tensors(b, &tb);
    cr_assert_eq(na, nb);
    for (int i = 0; i < na; i++) {
        cr_assert_eq(ta[i]->size, tb[i]->size);
        cr_assert(memcmp(ta[i]->data, tb[i]->data, ta[i]->size * sizeof(float)) == 0, "tensor %s differs",
                  ta[i]->name);
    }
}

Test(lr_find, leaves_the_model_unchanged_bit_for_bit) {
    nb_dataset d = regression_data();
    nb_model *m = mlp(), *before = nb_model_clone(m);
    cr_assert_not_null(before);
    nb_fit_opts f = nb_fit_defaults();
    f.batch_size = 16, f.loss = (nb_loss_config){.kind = NB_LOSS_MSE};
    f.optimizer = nb_optimizer_defaults(NB_ADAM);
    nb_lr_find_opts o = nb_lr_find_defaults();
    o.steps = 50, o.fit = &f;
    nb_lr_find_result r;
    cr_assert_eq(nb_lr_find(m, &d, &o, &r), NB_OK, "%s", nb_last_error());
    nb_lr_find_result_free(&r);
    assert_same_bits(m, before);
    /* and nothing hidden moved: training both afterwards gives the same bits */
    f.epochs = 2, f.verbose = 0;
    f.optimizer.lr = 1e-3f;
    cr_assert_eq(nb_fit(m, &d, &f, NULL), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_fit(before, &d, &f, NULL), NB_OK, "%s", nb_last_error());
    assert_same_bits(m, before);
    nb_model_free(before);
    nb_model_free(m);
    nb_dataset_free(&d);
}

static void refused(nb_model *m, const nb_dataset *d, nb_lr_find_opts o, const char *text) {
    nb_lr_find_result r;
    memset(&r, 0xab, sizeof r);
    cr_assert_eq(nb_lr_find(m, d, &o, &r), NB_ERROR, "'%s' was not refused", text);
    cr_assert_eq(nb_last_error_kind(), NB_ERR_INVALID_ARGUMENT, "%s: kind %d", nb_last_error(), nb_last_error_kind());
    cr_assert(strstr(nb_last_error(), text), "'%s' lacks '%s'", nb_last_error(), text);
    cr_assert(r.n == 0 && !r.lr && !r.loss && !r.smoothed, "the result is not zeroed");
}

Test(lr_find, refuses_bad_options_with_a_message) {
    nb_dataset d = regression_data();
    nb_model *m = linear_model();
    nb_fit_opts f = full_batch_sgd();
    nb_lr_find_opts o = nb_lr_find_defaults(), b;
    o.fit = &f;
    b = o, b.lr_min = 1, b.lr_max = 1;
    refused(m, &d, b, "lr_min 1 must be below lr_max 1");
    b = o, b.lr_min = 2, b.lr_max = 1;
    refused(m, &d, b, "must be below lr_max");
    b = o, b.lr_min = 0;
    refused(m, &d, b, "lr_min > 0");
    b = o, b.lr_min = -1e-3;
    refused(m, &d, b, "lr_min > 0");
    b = o, b.lr_max = INFINITY;
    refused(m, &d, b, "must be finite");
    b = o, b.lr_min = NAN;
    refused(m, &d, b, "must be finite");
    b = o, b.steps = 1;
    refused(m, &d, b, "1 steps: at least 2 are needed");
    b = o, b.steps = -5;
    refused(m, &d, b, "at least 2 are needed");
    f.batch_size = 64; /* one epoch is one full batch */
    refused(m, &d, o, "one epoch is 1 step: at least 2 are needed");
    f.batch_size = N;
    b = o, b.smoothing = 1;
    refused(m, &d, b, "smoothing 1 must be in [0, 1)");
    b = o, b.diverge = 1;
    refused(m, &d, b, "diverge 1 must be a finite number > 1");
    refused(NULL, &d, o, "model is NULL");
    refused(m, NULL, o, "train is NULL");
    cr_assert_eq(nb_lr_find(m, &d, &o, NULL), NB_ERROR);
    cr_assert_eq(nb_last_error_kind(), NB_ERR_INVALID_ARGUMENT);
    nb_model_free(m);
    nb_dataset_free(&d);
}

Test(lr_find, writes_its_csv_and_refuses_an_unknown_plot_format) {
    nb_dataset d = regression_data();
    nb_model *m = linear_model();
    nb_fit_opts f = full_batch_sgd();
    nb_lr_find_opts o = nb_lr_find_defaults();
    o.lr_min = 1e-5, o.lr_max = 1e-2, o.steps = 12, o.fit = &f;
    nb_lr_find_result r;
    cr_assert_eq(nb_lr_find(m, &d, &o, &r), NB_OK, "%s", nb_last_error());
    char dir[] = "/tmp/nabla-lrfind-XXXXXX", path[64], line[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/lr.csv", dir);
    cr_assert_eq(nb_lr_find_write_csv(&r, path), NB_OK, "%s", nb_last_error());
    FILE *csv = fopen(path, "r");
    cr_assert_not_null(csv);
    cr_assert(fgets(line, sizeof line, csv) && !strcmp(line, "step,lr,loss,smoothed\n"), "%s", line);
    long rows = 0;
    while (fgets(line, sizeof line, csv)) {
        long step;
        double lr, loss, sm;
        cr_assert_eq(sscanf(line, "%ld,%lf,%lf,%lf", &step, &lr, &loss, &sm), 4, "%s", line);
        cr_assert_eq(step, rows);
        cr_assert(fabs(lr - r.lr[rows]) <= 1e-8 * r.lr[rows] && fabs(sm - r.smoothed[rows]) <= 1e-7 * fabs(sm));
        rows++;
    }
    fclose(csv);
    cr_assert_eq(rows, r.n);
    snprintf(path, sizeof path, "%s/lr.jpg", dir);
    cr_assert_eq(nb_lr_find_plot(&r, path), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "must end in .png or .svg"), "%s", nb_last_error());
    cr_assert_eq(access(path, F_OK), -1);
    nb_lr_find_result empty = {0};
    cr_assert_eq(nb_lr_find_write_csv(&empty, path), NB_ERROR);
    nb_lr_find_result_free(&r);
    nb_lr_find_result_free(&r); /* freeing twice is fine: free zeroes it */
    snprintf(path, sizeof path, "%s/lr.csv", dir);
    unlink(path);
    rmdir(dir);
    nb_model_free(m);
    nb_dataset_free(&d);
}
