/* bench-train — the training benchmark of issue 4: the book's models on
 * Fashion-MNIST, one timed epoch of nb_fit after a warm-up.
 *
 * Models (every Dense of a model, the output layer included, gets the
 * model's initializer; biases start at zero):
 *   a  784-300-100-10, ReLU, He normal, SGD lr 0.01          batch 32, 256, 1024
 *   b  a with batch norm after each hidden Dense (no bias)   batch 32
 *   c  784 -> 20 x [Dense(100, no bias), batch norm, ELU] -> 10, He normal,
 *      Nadam lr 1e-3                                         batch 32, 256
 *   d  784 -> 20 x Dense(100, SELU) -> 10, LeCun normal, inputs standardized
 *      with statistics of the 55,000 training images, SGD with Nesterov
 *      momentum 0.9, lr 1e-3                                 batch 32
 *   e  a with dropout 0.2 before each Dense, one epoch, then MC dropout:
 *      100 stochastic passes over the 10,000 test images    batch 32
 *
 * For each model/batch and thread count: a warm-up fit of a few batches on a
 * throwaway copy of the model (thread pools, caches, clock), then one epoch
 * of 55,000 images on a fresh model (seed 42 or --seed), timed by the history's
 * train_seconds (training steps only; the validation pass after the epoch
 * is not counted) -> step time and samples per second; the accuracy on the
 * 5,000 validation images (the last 5,000 of the 60,000) after that epoch;
 * and the heap allocations per steady-state step: those made between the
 * ends of epochs 1 and 2 of a short 2-epoch fit on a subset (epoch 2's
 * steps and its validation pass), divided by epoch 2's steps. Allocations
 * are counted over the whole process by interposing malloc and friends
 * (tests/alloc_count.c). The "others" column is the share of the machine's
 * CPUs that other processes used (or the hypervisor stole) meanwhile: on
 * the shared 2-core machine, a row with more than a few percent is suspect.
 *
 *   bench-train [--models a,b,c,d,e] [--threads 1,2] [--quick] [--json]
 *               [--repeat N] [--mc-batch N] [--mc-passes N] [--data DIR] [--seed S]
 *               [--quiet-wait S]
 *   bench-train --probe MODEL:BATCH --steps N [--threads T]
 *
 * --quick times a 5,500-image epoch (and 10 MC passes). --repeat N times N
 * epochs, each on a fresh model, and reports the median step time (min and
 * max beside it). --quiet-wait S waits, before each timed epoch and the MC
 * passes, up to S seconds for the machine to be quiet (others < 10% over
 * 0.3 s). --json prints one JSON object per row on stdout (the
 * table then goes to stderr). --probe trains N steps on synthetic data and
 * nothing else (no data files, no validation): compare.sh runs it under
 * `strace -c -f` at two step counts to get system calls per step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "alloc_count.h"
#include "nabla/nabla.h"

#define N_TRAIN 55000
#define N_QUICK 5500
#define N_VAL 5000

static uint64_t g_seed = 42; /* weights, shuffles, dropout masks; --seed */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- how busy the machine was with others ----
 * The share of the machine's CPUs (0 to 1) that other processes used, or
 * the hypervisor stole, while we ran: busy time of all CPUs from /proc/stat
 * (user, nice, system, irq, softirq, steal) minus this process's own CPU
 * time, over wall time x CPUs. On a shared 2-core machine a run with a few
 * percent of that is suspect, above all at 2 threads. -1 if unknown. */

typedef struct load_mark {
    double wall, own, busy;
    bool ok;
} load_mark;

static load_mark load_now(void) {
    load_mark m = {.wall = now()};
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    m.own = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
            1e-6 * (double)ru.ru_stime.tv_usec;
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7]) == 8) {
        m.busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
        m.ok = true;
    }
    if (f) fclose(f);
    return m;
}

static double others_cpu(load_mark a, load_mark b) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (!a.ok || !b.ok || cpus < 1 || b.wall <= a.wall) return -1;
    double x = ((b.busy - a.busy) - (b.own - a.own)) / ((b.wall - a.wall) * (double)cpus);
    return x < 0 ? 0 : x;
}

/* --quiet-wait S: before each timed epoch and the MC passes, wait (at most S
 * seconds) until other processes use less than 10% of the machine over
 * 0.3 s, so that bursts of other work on a shared machine are not measured. */
static double g_quiet_wait = 0;

static void wait_quiet(void) {
    double end = now() + g_quiet_wait;
    while (g_quiet_wait > 0 && now() < end) {
        load_mark a = load_now();
        nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL);
        double x = others_cpu(a, load_now());
        if (x < 0.10) return; /* unknown (-1) included */
    }
}

/* ---- the models ---- */

static bool add(nb_model *m, nb_layer_spec s) { return nb_model_add(m, &s) != NULL; }

static nb_layer_spec dense(int units, const char *act, const char *init, bool no_bias) {
    nb_layer_spec s = nb_dense_spec(units, act, init);
    s.no_bias = no_bias;
    return s;
}

static nb_model *build_model(char model, uint64_t seed) {
    nb_model *m = nb_model_new(2, (int[]){28, 28}, seed);
    bool ok = m && add(m, (nb_layer_spec){.kind = NB_LAYER_FLATTEN});
    switch (model) {
    case 'a':
        ok = ok && add(m, dense(300, "relu", "he_normal", false)) && add(m, dense(100, "relu", "he_normal", false)) &&
             add(m, dense(10, NULL, "he_normal", false));
        break;
    case 'b':
        ok = ok && add(m, dense(300, NULL, "he_normal", true)) && add(m, nb_batch_norm_spec()) &&
             add(m, nb_activation_spec("relu")) && add(m, dense(100, NULL, "he_normal", true)) &&
             add(m, nb_batch_norm_spec()) && add(m, nb_activation_spec("relu")) &&
             add(m, dense(10, NULL, "he_normal", false));
        break;
    case 'c':
        for (int i = 0; ok && i < 20; i++)
            ok = add(m, dense(100, NULL, "he_normal", true)) && add(m, nb_batch_norm_spec()) &&
                 add(m, nb_activation_spec("elu"));
        ok = ok && add(m, dense(10, NULL, "he_normal", false));
        break;
    case 'd':
        for (int i = 0; ok && i < 20; i++) ok = add(m, dense(100, "selu", "lecun_normal", false));
        ok = ok && add(m, dense(10, NULL, "lecun_normal", false));
        break;
    case 'e':
        ok = ok && add(m, nb_dropout_spec(0.2f)) && add(m, dense(300, "relu", "he_normal", false)) &&
             add(m, nb_dropout_spec(0.2f)) && add(m, dense(100, "relu", "he_normal", false)) &&
             add(m, nb_dropout_spec(0.2f)) && add(m, dense(10, NULL, "he_normal", false));
        break;
    default: ok = false;
    }
    if (!ok) {
        fprintf(stderr, "bench-train: model %c: %s\n", model, nb_last_error());
        nb_model_free(m);
        return NULL;
    }
    return m;
}

static nb_optimizer_config optimizer_for(char model) {
    nb_optimizer_config o;
    switch (model) {
    case 'c': o = nb_optimizer_defaults(NB_NADAM), o.lr = 1e-3f; break;
    case 'd': o = nb_optimizer_defaults(NB_NESTEROV), o.lr = 1e-3f, o.momentum = 0.9f; break;
    default: o = nb_optimizer_defaults(NB_SGD), o.lr = 0.01f; break;
    }
    return o;
}

static const char *describe(char model) {
    switch (model) {
    case 'a': return "784-300-100-10 ReLU, He normal, SGD 0.01";
    case 'b': return "a + batch norm after each hidden Dense";
    case 'c': return "20 x [Dense 100, BN, ELU], He normal, Nadam 1e-3";
    case 'd': return "20 x Dense 100 SELU, LeCun normal, std. inputs, Nesterov 0.9, 1e-3";
    case 'e': return "a + dropout 0.2 before each Dense, then MC dropout";
    default: return "?";
    }
}

/* ---- one row ---- */

typedef struct row {
    char model;
    int batch;
} row;

static const row rows[] = {{'a', 32}, {'a', 256}, {'a', 1024}, {'b', 32}, {'c', 32}, {'c', 256}, {'d', 32}, {'e', 32}};

typedef struct result {
    int steps, repeats;
    double step_ms, step_ms_min, step_ms_max, samples_per_second, val_accuracy, allocs_per_step;
    double mc_ips, mc_accuracy, mc_seconds;
    double others_cpu; /* the largest over the timed epochs (and the MC passes) */
    int mc_passes;
    bool ok;
} result;

static unsigned long epoch_allocs[2];

static bool count_allocations(const nb_epoch_metrics *e, void *user) {
    (void)user;
    if (e->epoch <= 2) epoch_allocs[e->epoch - 1] = alloc_count();
    return true;
}

static nb_fit_opts fit_opts(char model, int batch, int epochs) {
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = epochs, o.batch_size = batch, o.seed = g_seed, o.verbose = 0;
    o.optimizer = optimizer_for(model);
    return o;
}

static nb_dataset head(const nb_dataset *d, int n) {
    nb_dataset v = *d;
    v.n = n < d->n ? n : d->n;
    return v;
}

typedef struct data {
    nb_dataset train, val, test;       /* views of the scaled sets */
    nb_dataset train_std, val_std;     /* views of the standardized ones (model d) */
} data;

static bool fail(const char *what) {
    fprintf(stderr, "bench-train: %s: %s\n", what, nb_last_error());
    return false;
}

static bool run_row(const row *r, int threads, const data *dd, int n_train, int repeats, int mc_batch,
                    int mc_passes, result *res) {
    memset(res, 0, sizeof *res);
    nb_set_num_threads(threads);
    const nb_dataset *train_all = r->model == 'd' ? &dd->train_std : &dd->train;
    const nb_dataset *val = r->model == 'd' ? &dd->val_std : &dd->val;
    nb_dataset train = head(train_all, n_train);

    /* warm-up: a few batches on a throwaway copy of the model */
    int warm_batches = r->batch >= 1024 ? 8 : 16;
    nb_dataset warm = head(train_all, warm_batches * r->batch);
    nb_model *m = build_model(r->model, g_seed);
    if (!m) return false;
    nb_fit_opts o = fit_opts(r->model, r->batch, 1);
    if (nb_fit(m, &warm, &o, NULL) != NB_OK) return nb_model_free(m), fail("warm-up");
    nb_model_free(m);

    /* timed epochs, each on a fresh model */
    double *ms = calloc((size_t)repeats, sizeof(double));
    if (!ms) return fprintf(stderr, "bench-train: out of memory\n"), false;
    res->steps = (train.n + r->batch - 1) / r->batch;
    res->repeats = repeats;
    m = NULL;
    for (int k = 0; k < repeats; k++) {
        nb_model_free(m);
        if (!(m = build_model(r->model, g_seed))) return free(ms), false;
        o = fit_opts(r->model, r->batch, 1);
        o.validation = val;
        nb_history h;
        wait_quiet();
        load_mark l0 = load_now();
        if (nb_fit(m, &train, &o, &h) != NB_OK) return free(ms), nb_model_free(m), fail("fit");
        double busy = others_cpu(l0, load_now());
        if (k == 0 || busy > res->others_cpu) res->others_cpu = busy;
        ms[k] = 1e3 * h.train_seconds / res->steps;
        if (k == 0) res->val_accuracy = h.epochs[0].val_accuracy;
        nb_history_free(&h);
    }
    res->step_ms = median(ms, repeats); /* sorts ms */
    res->step_ms_min = ms[0], res->step_ms_max = ms[repeats - 1];
    res->samples_per_second = train.n / (res->step_ms * 1e-3 * res->steps);
    free(ms);

    /* MC dropout on the trained model e: a small warm-up call, then the timed passes */
    if (r->model == 'e') {
        nb_dataset small = head(&dd->test, mc_batch < 1000 ? mc_batch : 1000);
        if (nb_predict_mc(m, &small, mc_batch, 2, g_seed, NULL, NULL, NULL) != NB_OK)
            return nb_model_free(m), fail("predict_mc warm-up");
        wait_quiet();
        load_mark l0 = load_now();
        if (nb_predict_mc(m, &dd->test, mc_batch, mc_passes, g_seed, NULL, NULL, &res->mc_accuracy) != NB_OK)
            return nb_model_free(m), fail("predict_mc");
        load_mark l1 = load_now();
        res->mc_seconds = l1.wall - l0.wall;
        double busy = others_cpu(l0, l1);
        if (busy > res->others_cpu) res->others_cpu = busy;
        res->mc_passes = mc_passes;
        res->mc_ips = (double)dd->test.n * mc_passes / res->mc_seconds;
    }
    nb_model_free(m);

    /* allocations per steady-state step: between the ends of epochs 1 and 2 */
    int n_sub = 4 * r->batch > 2000 ? 4 * r->batch : 2000;
    nb_dataset sub = head(train_all, n_sub), val_sub = head(val, 500);
    if (!(m = build_model(r->model, g_seed))) return false;
    o = fit_opts(r->model, r->batch, 2);
    o.validation = &val_sub;
    o.on_epoch = count_allocations;
    epoch_allocs[0] = epoch_allocs[1] = 0;
    if (nb_fit(m, &sub, &o, NULL) != NB_OK) return nb_model_free(m), fail("fit (allocation count)");
    nb_model_free(m);
    int sub_steps = (sub.n + r->batch - 1) / r->batch;
    res->allocs_per_step = (double)(epoch_allocs[1] - epoch_allocs[0]) / sub_steps;
    res->ok = true;
    return true;
}

/* ---- output ---- */

static void print_header(FILE *out, int n_train, int repeats, int mc_batch, int mc_passes) {
    fprintf(out,
            "bench-train: Fashion-MNIST, one timed epoch of %d images after a warm-up (%s), validation on %d;\n"
            "BLIS sub-configuration %s, sgemm micro-kernel %s; MC dropout: %d passes over the test set in batches "
            "of %d\n",
            n_train, repeats > 1 ? "median of the repeats" : "one run", N_VAL, nb_blis_arch(), nb_blis_kernel(),
            mc_passes, mc_batch);
    fprintf(out, "%-5s %5s %3s %6s %11s %10s %9s %8s %9s %6s  %s\n", "model", "batch", "thr", "steps", "step ms",
            "min-max", "samples/s", "val acc", "allocs/st", "others", "MC dropout");
}

static void print_row(FILE *out, const row *r, int threads, const result *s) {
    char range[32] = "";
    if (s->repeats > 1) snprintf(range, sizeof range, "%.3f-%.3f", s->step_ms_min, s->step_ms_max);
    fprintf(out, "%-5c %5d %3d %6d %11.4f %10s %9.0f %8.4f %9.2f %5.0f%%", r->model, r->batch, threads, s->steps,
            s->step_ms, range, s->samples_per_second, s->val_accuracy, s->allocs_per_step, 100 * s->others_cpu);
    if (r->model == 'e')
        fprintf(out, "  %.0f images x passes/s (%d passes, %.2f s, accuracy %.4f)", s->mc_ips, s->mc_passes,
                s->mc_seconds, s->mc_accuracy);
    fputc('\n', out);
    fflush(out);
}

static void print_json(const row *r, int threads, const result *s, bool quick) {
    printf("{\"framework\":\"nabla\",\"model\":\"%c\",\"batch\":%d,\"threads\":%d,\"step_ms\":%.6g,"
           "\"samples_per_second\":%.6g,\"val_accuracy\":%.6g,\"allocs_per_step\":%.6g,\"steps\":%d,"
           "\"repeats\":%d,\"step_ms_min\":%.6g,\"step_ms_max\":%.6g,\"others_cpu\":%.3f,\"quick\":%s",
           r->model, r->batch, threads, s->step_ms, s->samples_per_second, s->val_accuracy, s->allocs_per_step,
           s->steps, s->repeats, s->step_ms_min, s->step_ms_max, s->others_cpu, quick ? "true" : "false");
    if (r->model == 'e')
        printf(",\"mc_images_passes_per_second\":%.6g,\"mc_passes\":%d,\"mc_accuracy\":%.6g", s->mc_ips, s->mc_passes,
               s->mc_accuracy);
    printf("}\n");
    fflush(stdout);
}

/* ---- --probe: N steps on synthetic data, for strace ---- */

static int probe(const char *spec, int steps, int threads) {
    char model;
    int batch;
    if (sscanf(spec, "%c:%d", &model, &batch) != 2 || batch < 1 || steps < 1) {
        fprintf(stderr, "bench-train: --probe wants MODEL:BATCH (a:32) and --steps N >= 1\n");
        return 2;
    }
    nb_set_num_threads(threads);
    nb_dataset d = {.n = steps * batch, .dim = 784, .rows = 28, .cols = 28, .n_classes = 10};
    d.x = malloc(sizeof(float) * (size_t)d.n * 784);
    d.y = malloc(sizeof(float) * (size_t)d.n);
    if (!d.x || !d.y) return fprintf(stderr, "bench-train: out of memory\n"), 1;
    nb_rng rng;
    nb_rng_seed(&rng, g_seed, 0);
    for (size_t i = 0; i < (size_t)d.n * 784; i++) d.x[i] = nb_rng_uniform(&rng);
    for (int i = 0; i < d.n; i++) d.y[i] = (float)(i % 10);
    nb_model *m = build_model(model, g_seed);
    if (!m) return 1;
    nb_fit_opts o = fit_opts(model, batch, 1);
    nb_history h;
    if (nb_fit(m, &d, &o, &h) != NB_OK) return fail("fit"), 1;
    printf("probe %c:%d, %d threads, %d steps, %.4f ms/step\n", model, batch, threads, steps,
           1e3 * h.train_seconds / steps);
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&d);
    return 0;
}

/* ---- main ---- */

static int usage(void) {
    fprintf(stderr, "usage: bench-train [--models a,b,c,d,e] [--threads 1,2] [--quick] [--json] [--repeat N]\n"
                    "                   [--mc-batch N] [--mc-passes N] [--data DIR] [--seed S] [--quiet-wait S]\n"
                    "       bench-train --probe MODEL:BATCH --steps N [--threads T]\n");
    return 2;
}

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    char *end;
    while (*s && n < max) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 256) return 0;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return 0;
    }
    return n;
}

int main(int argc, char **argv) {
    const char *models = "abcde", *data_dir = NULL, *probe_spec = NULL;
    int thread_list[8] = {1, 2}, n_threads = 2, repeats = 1, mc_batch = 10000, mc_passes = -1, probe_steps = 0;
    bool quick = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--quick")) quick = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--models") && has) models = argv[++i];
        else if (!strcmp(a, "--threads") && has) {
            if (!(n_threads = parse_list(argv[++i], thread_list, 8))) return usage();
        } else if (!strcmp(a, "--repeat") && has) repeats = atoi(argv[++i]);
        else if (!strcmp(a, "--mc-batch") && has) mc_batch = atoi(argv[++i]);
        else if (!strcmp(a, "--mc-passes") && has) mc_passes = atoi(argv[++i]);
        else if (!strcmp(a, "--data") && has) data_dir = argv[++i];
        else if (!strcmp(a, "--quiet-wait") && has) g_quiet_wait = atof(argv[++i]);
        else if (!strcmp(a, "--seed") && has) g_seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--probe") && has) probe_spec = argv[++i];
        else if (!strcmp(a, "--steps") && has) probe_steps = atoi(argv[++i]);
        else return usage();
    }
    if (probe_spec) return probe(probe_spec, probe_steps, thread_list[0]);
    if (repeats < 1 || mc_batch < 1 || strspn(models, "abcde,") != strlen(models)) return usage();
    if (mc_passes < 0) mc_passes = quick ? 10 : 100;
    if (mc_passes < 1) return usage();
    if (!alloc_count_works()) {
        fprintf(stderr, "bench-train: this build cannot count allocations\n");
        return 1;
    }

    nb_dataset all = {0}, test = {0};
    if (nb_load_mnist_dir(data_dir, &all, &test) != NB_OK) return fail("data"), 1;
    if (all.n < N_TRAIN + N_VAL) {
        fprintf(stderr, "bench-train: %d training images, 60,000 expected\n", all.n);
        return 1;
    }
    nb_dataset_scale(&all, 1.0f / 255);
    nb_dataset_scale(&test, 1.0f / 255);
    data dd = {.train = head(&all, N_TRAIN), .test = test};
    dd.val = all;
    dd.val.x += (size_t)N_TRAIN * all.dim, dd.val.y += N_TRAIN, dd.val.n = N_VAL;

    /* model d: a standardized copy, statistics from the 55,000 training images only */
    nb_dataset all_std = {0};
    nb_standardizer st = {0};
    if (strchr(models, 'd')) {
        if (nb_dataset_slice(&all, 0, N_TRAIN + N_VAL, &all_std) != NB_OK ||
            nb_standardizer_fit(&st, &dd.train) != NB_OK || nb_standardizer_apply(&st, &all_std) != NB_OK)
            return fail("standardize"), 1;
        dd.train_std = head(&all_std, N_TRAIN);
        dd.val_std = all_std;
        dd.val_std.x += (size_t)N_TRAIN * all.dim, dd.val_std.y += N_TRAIN, dd.val_std.n = N_VAL;
    }

    int n_train = quick ? N_QUICK : N_TRAIN;
    FILE *out = json ? stderr : stdout;
    print_header(out, n_train, repeats, mc_batch, mc_passes);
    int status = 0;
    char last = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        if (!strchr(models, r->model)) continue;
        if (r->model != last) fprintf(out, "# %c: %s\n", r->model, describe(r->model)), last = r->model;
        for (int t = 0; t < n_threads; t++) {
            result res;
            if (!run_row(r, thread_list[t], &dd, n_train, repeats, mc_batch, mc_passes, &res)) {
                status = 1;
                continue;
            }
            print_row(out, r, thread_list[t], &res);
            if (json) print_json(r, thread_list[t], &res, quick);
        }
    }
    nb_standardizer_free(&st);
    nb_dataset_free(&all_std);
    nb_dataset_free(&all), nb_dataset_free(&test);
    return status;
}
