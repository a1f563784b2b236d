/* Data parallelism in fit (nb_fit_dist), without MPI: two "processes" are
 * two threads of this test whose sums meet at a barrier. Two shares of
 * every batch of 32 end with the weights of one process on batches of 32,
 * within float rounding; a failure on one stops both, naming it; a model
 * that differs is refused at the start. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "nabla/nabla.h"

#define RANKS 2

/* The meeting point: each rank writes its vector, waits, all add them up. */
typedef struct comm {
    pthread_barrier_t barrier;
    double *dv[RANKS];
    float *fv[RANKS];
} comm;

typedef struct rank_ctx {
    comm *c;
    int rank;
} rank_ctx;

static nb_status sum_doubles(void *user, double *v, int n) {
    rank_ctx *r = user;
    r->c->dv[r->rank] = v;
    pthread_barrier_wait(&r->c->barrier);
    double total[64];
    for (int i = 0; i < n; i++) {
        total[i] = 0;
        for (int k = 0; k < RANKS; k++) total[i] += r->c->dv[k][i];
    }
    pthread_barrier_wait(&r->c->barrier); /* everyone has read before anyone writes */
    memcpy(v, total, sizeof(double) * (size_t)n);
    return NB_OK;
}

static nb_status sum_floats(void *user, float *v, size_t n) {
    rank_ctx *r = user;
    r->c->fv[r->rank] = v;
    pthread_barrier_wait(&r->c->barrier);
    static float total[RANKS][4096];
    for (size_t i = 0; i < n; i++) {
        double t = 0; /* rank order, as an allreduce fixes it */
        for (int k = 0; k < RANKS; k++) t += r->c->fv[k][i];
        total[r->rank][i] = (float)t;
    }
    pthread_barrier_wait(&r->c->barrier);
    memcpy(v, total[r->rank], sizeof(float) * n);
    return NB_OK;
}

/* The overlapped calls (nb_fit_dist's start_sum_floats, progress,
 * wait_sums): a start sums at once, so the two ranks must start the same
 * buckets in the same order from inside their backward passes. */
static _Thread_local int starts, waits;
static nb_status start_sum(void *user, float *v, size_t n) {
    starts++;
    return sum_floats(user, v, n);
}
static void progress(void *user) { (void)user; }
static nb_status wait_sums(void *user) {
    (void)user;
    waits++;
    return NB_OK;
}

/* 200 examples of 6 features, 3 classes. */
static nb_dataset blobs(void) {
    static float x[200 * 6], y[200];
    nb_rng r;
    nb_rng_seed(&r, 5, 0);
    for (int i = 0; i < 200; i++) {
        y[i] = (float)(i % 3);
        for (int k = 0; k < 6; k++) x[i * 6 + k] = nb_rng_uniform(&r) - 0.5f + (k % 3 == i % 3);
    }
    return (nb_dataset){.x = x, .y = y, .n = 200, .dim = 6, .rows = 1, .cols = 6, .n_classes = 3};
}

static nb_model *net(uint64_t seed) {
    nb_model *m = nb_model_new(1, (int[]){6}, seed);
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 16, .activation = "tanh"});
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 3});
    return m;
}

typedef struct job {
    int starts, waits; /* the overlapped calls this rank made */
    rank_ctx ctx;
    nb_fit_dist dist;
    nb_model *m;
    nb_dataset *d;
    nb_fit_opts o;
    nb_status st;
    char error[512];
    nb_history h;
    int fail_at_epoch; /* > 0: this rank's callback makes the data bad from then on */
} job;

static void *run(void *arg) {
    job *j = arg;
    nb_set_num_threads(1);
    starts = waits = 0;
    j->st = nb_fit(j->m, j->d, &j->o, &j->h);
    snprintf(j->error, sizeof j->error, "%s", nb_last_error());
    j->starts = starts, j->waits = waits;
    return NULL;
}

static nb_fit_opts opts(void) {
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = 3, o.batch_size = 32, o.verbose = 0, o.seed = 9, o.validation_split = 0.2f;
    o.optimizer = nb_optimizer_defaults(NB_ADAM);
    return o;
}

static nb_fit_dist dist_of(rank_ctx *ctx, bool check, bool sync, bool overlap) {
    nb_fit_dist d = {.rank = ctx->rank, .size = RANKS, .user = ctx, .sum = sum_doubles, .sum_floats = sum_floats,
                     .check_weights = check, .sync_batchnorm = sync};
    if (overlap) /* a bucket per tensor or two */
        d.start_sum_floats = start_sum, d.progress = progress, d.wait_sums = wait_sums, d.bucket_bytes = 64;
    return d;
}

/* Runs RANKS fits at once on models from seeds[r]; j[r] holds each result. */
static bool sync_bn; /* the next run_ranks's: synchronized batch norm */
static bool overlap; /* the next run_ranks's: sums started in backward */
static const char *backup;  /* the next run_ranks's nb_fit_opts.backup */
static nb_epoch_callback on_epoch; /* the next run_ranks's, on rank 0 */
static nb_model *(*make)(uint64_t seed);

static void run_ranks(job *j, const uint64_t *seeds, nb_dataset *d, bool check) {
    static comm c;
    pthread_barrier_init(&c.barrier, NULL, RANKS);
    pthread_t t[RANKS];
    for (int r = 0; r < RANKS; r++) {
        j[r].ctx = (rank_ctx){&c, r};
        j[r].dist = dist_of(&j[r].ctx, check, sync_bn, overlap);
        j[r].m = (make ? make : net)(seeds[r]);
        j[r].d = d;
        j[r].o = opts();
        j[r].o.dist = &j[r].dist;
        j[r].o.backup = backup;
        if (r == 0) j[r].o.on_epoch = on_epoch, j[r].o.user = j[r].m;
        pthread_create(&t[r], NULL, run, &j[r]);
    }
    for (int r = 0; r < RANKS; r++) pthread_join(t[r], NULL);
    pthread_barrier_destroy(&c.barrier);
}

static void two_shares_end_with_one_process_s_weights(void) {
    nb_dataset d = blobs();
    nb_model *one = net(3);
    nb_fit_opts o = opts();
    nb_history h1;
    cr_assert_eq(nb_fit(one, &d, &o, &h1), NB_OK, "%s", nb_last_error());
    job j[RANKS];
    run_ranks(j, (uint64_t[]){3, 3}, &d, true);
    for (int r = 0; r < RANKS; r++) cr_assert_eq(j[r].st, NB_OK, "rank %d: %s", r, j[r].error);
    nb_tensor *const *a, *const *b, *const *c;
    int n = nb_model_tensors(one, &a);
    nb_model_tensors(j[0].m, &b);
    nb_model_tensors(j[1].m, &c);
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < a[i]->size; k++) {
            cr_assert_eq(b[i]->data[k], c[i]->data[k], "the ranks' %s differ", a[i]->name); /* same bits */
            cr_assert_float_eq(b[i]->data[k], a[i]->data[k], 1e-5f, "%s[%zu]: %g on 2, %g on 1", a[i]->name, k,
                               b[i]->data[k], a[i]->data[k]);
        }
    for (int e = 0; e < 3; e++) { /* the same history on every rank, and that of one process */
        cr_assert_eq(j[0].h.epochs[e].loss, j[1].h.epochs[e].loss);
        cr_assert_float_eq(j[0].h.epochs[e].loss, h1.epochs[e].loss, 1e-5);
        cr_assert_float_eq(j[0].h.epochs[e].val_accuracy, h1.epochs[e].val_accuracy, 1e-9);
    }
    for (int r = 0; r < RANKS; r++) nb_history_free(&j[r].h), nb_model_free(j[r].m);
    nb_history_free(&h1);
    nb_model_free(one);
    for (int r = 0; r < RANKS && overlap; r++) { /* 4 tensors of 12 to 384 bytes: a bucket each */
        const int steps = 3 * ((160 + 31) / 32);
        cr_assert_eq(j[r].starts, 4 * steps, "rank %d started %d sums in %d steps", r, j[r].starts, steps);
        cr_assert_eq(j[r].waits, steps, "rank %d waited %d times in %d steps", r, j[r].waits, steps);
    }
}

Test(dist_core, two_shares_of_each_batch_end_with_one_process_s_weights) {
    two_shares_end_with_one_process_s_weights();
}

/* Buckets of at most 64 bytes, each summed as backward completes it. */
Test(dist_core, sums_started_during_backward_end_with_one_process_s_weights) {
    overlap = true;
    two_shares_end_with_one_process_s_weights();
    overlap = false;
}

Test(dist_core, models_that_differ_are_refused_at_the_start) {
    nb_dataset d = blobs();
    job j[RANKS];
    run_ranks(j, (uint64_t[]){3, 4}, &d, false);
    for (int r = 0; r < RANKS; r++) {
        cr_assert_eq(j[r].st, NB_ERROR, "rank %d trained", r);
        cr_assert(strstr(j[r].error, "differ between the processes: rank 1's are not rank 0's"), "rank %d: %s", r,
                  j[r].error);
        nb_model_free(j[r].m);
    }
}

/* Rank 1's data holds a NaN label from the start: its graph fails at a
 * step (a label out of range), and both ranks stop at that step. */
static void a_failure_on_one_stops_both(bool overlapped) {
    nb_dataset d = blobs();
    static float bad_y[200];
    memcpy(bad_y, d.y, sizeof bad_y);
    for (int i = 0; i < 200; i++) bad_y[i] = 7; /* beyond the 3 classes */
    nb_dataset bad = d;
    bad.y = bad_y;
    static comm c;
    pthread_barrier_init(&c.barrier, NULL, RANKS);
    job j[RANKS];
    pthread_t t[RANKS];
    for (int r = 0; r < RANKS; r++) {
        j[r].ctx = (rank_ctx){&c, r};
        j[r].dist = dist_of(&j[r].ctx, false, false, overlapped);
        j[r].m = net(3);
        j[r].d = r == 1 ? &bad : &d;
        j[r].o = opts();
        j[r].o.validation_split = 0;
        j[r].o.dist = &j[r].dist;
        pthread_create(&t[r], NULL, run, &j[r]);
    }
    for (int r = 0; r < RANKS; r++) pthread_join(t[r], NULL);
    pthread_barrier_destroy(&c.barrier);
    cr_assert_eq(j[0].st, NB_ERROR);
    cr_assert_eq(j[1].st, NB_ERROR);
    cr_assert(strstr(j[0].error, "process 1 failed at epoch 1, step 1"), "%s", j[0].error);
    cr_assert(strstr(j[1].error, "label"), "rank 1 names its own fault: %s", j[1].error);
    for (int r = 0; r < RANKS; r++) nb_model_free(j[r].m);
}

Test(dist_core, a_failure_on_one_process_stops_both_naming_it) { a_failure_on_one_stops_both(false); }

/* rank 1 fails in forward and starts its sums after; rank 0 in backward */
Test(dist_core, a_failure_with_sums_started_in_backward_stops_both) { a_failure_on_one_stops_both(true); }

/* Dense, batch norm, ReLU, Dense: with synchronized statistics, two shares
 * of every batch of 32 end with one process's weights and moving
 * statistics; with each share's own statistics they do not. */
static nb_model *bn_net(uint64_t seed) {
    nb_model *m = nb_model_new(1, (int[]){6}, seed);
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 16, .no_bias = true});
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_BATCH_NORM});
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_ACTIVATION, .activation = "relu"});
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 3});
    return m;
}

static double largest_difference(nb_model *a, nb_model *b) {
    nb_tensor *const *ta, *const *tb;
    int n = nb_model_tensors(a, &ta);
    nb_model_tensors(b, &tb);
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < ta[i]->size; k++) worst = fmax(worst, fabs((double)ta[i]->data[k] - tb[i]->data[k]));
    return worst;
}

Test(dist_core, synchronized_batch_norm_over_two_shares_ends_with_one_process_s_weights) {
    nb_dataset d = blobs();
    d.n = 192; /* 6 batches of 32: every share has rows */
    nb_model *one = bn_net(3);
    nb_fit_opts o = opts();
    cr_assert_eq(nb_fit(one, &d, &o, NULL), NB_OK, "%s", nb_last_error());
    job j[RANKS];
    make = bn_net;
    for (int s = 1; s >= 0; s--) {
        sync_bn = s;
        run_ranks(j, (uint64_t[]){3, 3}, &d, true);
        for (int r = 0; r < RANKS; r++) cr_assert_eq(j[r].st, NB_OK, "rank %d: %s", r, j[r].error);
        const double worst = largest_difference(one, j[0].m);
        if (s) cr_assert(worst < 1e-5, "synchronized: weights differ by %g from one process's", worst);
        else cr_assert(worst > 1e-4, "each share's own statistics: weights differ by only %g", worst);
        for (int r = 0; r < RANKS; r++) nb_history_free(&j[r].h), nb_model_free(j[r].m);
    }
    make = NULL, sync_bn = false;
    nb_model_free(one);
}

Test(dist_core, synchronized_batch_norm_refuses_a_batch_that_leaves_a_process_without_rows) {
    nb_dataset d = blobs();
    d.n = 161; /* the last batch holds 1 example */
    job j[RANKS];
    make = bn_net, sync_bn = true;
    run_ranks(j, (uint64_t[]){3, 3}, &d, false);
    for (int r = 0; r < RANKS; r++) {
        cr_assert_eq(j[r].st, NB_ERROR);
        cr_assert(strstr(j[r].error, "synchronized batch norm needs rows of every batch"), "%s", j[r].error);
        nb_model_free(j[r].m);
    }
    make = NULL, sync_bn = false;
}

/* Dropout and RReLU between the layers: the masks of each share are those
 * one process draws for its rows, so two shares end with its weights. */
static nb_model *dropout_net(uint64_t seed) {
    nb_model *m = nb_model_new(1, (int[]){6}, seed);
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 16, .activation = "rrelu"});
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DROPOUT, .rate = 0.3f});
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 3});
    return m;
}

Test(dist_core, dropout_and_rrelu_over_two_shares_draw_one_process_s_masks) {
    nb_dataset d = blobs();
    nb_model *one = dropout_net(3);
    nb_fit_opts o = opts();
    cr_assert_eq(nb_fit(one, &d, &o, NULL), NB_OK, "%s", nb_last_error());
    job j[RANKS];
    make = dropout_net;
    run_ranks(j, (uint64_t[]){3, 3}, &d, true);
    for (int r = 0; r < RANKS; r++) cr_assert_eq(j[r].st, NB_OK, "rank %d: %s", r, j[r].error);
    const double worst = largest_difference(one, j[0].m);
    cr_assert(worst < 1e-5, "weights differ by %g from one process's", worst);
    for (int r = 0; r < RANKS; r++) nb_history_free(&j[r].h), nb_model_free(j[r].m);
    make = NULL;
    nb_model_free(one);
}

/* A graph of rows 4..7 with row offset 4 draws the masks a graph of rows
 * 0..7 draws for them (5 features: the offset falls inside a Philox block). */
Test(dist_core, a_row_offset_draws_the_masks_of_those_rows) {
    float x[8 * 5];
    for (int i = 0; i < 40; i++) x[i] = 1.0f + 0.01f * (float)i;
    for (int op = 0; op < 2; op++) {
        float whole[40];
        for (int part = 0; part < 2; part++) {
            const int rows = part ? 4 : 8;
            nb_graph *g = nb_graph_new();
            nb_graph_set_seed(g, 77);
            nb_node *in = nb_input(g, "x", 2, (int[]){rows, 5});
            nb_node *y = op ? nb_rrelu(g, nb_scale(g, in, -1.0f), 0.1f, 0.4f) : nb_dropout(g, in, 0.5f);
            nb_graph_set_row_offset(g, part ? 4 : 0);
            nb_feed(g, in, part ? x + 20 : x, rows);
            cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK, "%s", nb_graph_error(g));
            if (!part) memcpy(whole, nb_node_value(y), sizeof whole);
            else
                for (int i = 0; i < 20; i++)
                    cr_assert_eq(nb_node_value(y)[i], whole[20 + i], "%s: element %d", op ? "rrelu" : "dropout", i);
            nb_graph_free(g);
        }
    }
}

/* A callback on rank 0 alone freezes the first layer after epoch 1, so
 * rank 0 would sum fewer gradients than rank 1 from epoch 2 on: both stop
 * at epoch 2's start, naming the rank that differs, instead of adding up
 * mismatched buckets (or, over MPI, waiting for a sum that never comes). */
static bool freeze_first_layer(const nb_epoch_metrics *m, void *user) {
    if (m->epoch == 1) nb_layer_set_trainable(nb_model_layer(user, 0), false);
    return true;
}

Test(dist_core, a_layer_frozen_on_one_process_only_stops_both, .timeout = 60) {
    nb_dataset d = blobs();
    for (int ov = 0; ov < 2; ov++) {
        job j[RANKS];
        overlap = ov, on_epoch = freeze_first_layer;
        run_ranks(j, (uint64_t[]){3, 3}, &d, false);
        on_epoch = NULL, overlap = false;
        for (int r = 0; r < RANKS; r++) {
            cr_assert_eq(j[r].st, NB_ERROR, "overlap %d: rank %d trained on", ov, r);
            cr_assert(strstr(j[r].error, "the trainable tensors differ between the processes: rank 1's are not "
                                         "rank 0's"),
                      "overlap %d, rank %d: %s", ov, r, j[r].error);
            nb_model_free(j[r].m);
        }
    }
}

/* ---- resuming with another number of processes ---- */

static char run_backup[64], spare[64];

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    cr_assert(a && b, "copying %s to %s", from, to);
    char buf[1 << 16];
    for (size_t n; (n = fread(buf, 1, sizeof buf, a)) > 0;) fwrite(buf, 1, n, b);
    fclose(a), fclose(b);
}

/* after epoch 2 the backup of epoch 2 is on disk: kept aside, as a crash there would leave it */
static bool keep_backup(const nb_epoch_metrics *m, void *user) {
    (void)user;
    if (m->epoch == 2) copy_file(run_backup, spare);
    return true;
}

static void assert_close(nb_model *x, nb_model *y, const char *what) {
    nb_tensor *const *a, *const *b;
    int n = nb_model_tensors(x, &a);
    cr_assert_eq(nb_model_tensors(y, &b), n);
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < a[i]->size; k++)
            cr_assert_float_eq(a[i]->data[k], b[i]->data[k], 1e-5f, "%s: %s[%zu] %g against %g", what, a[i]->name, k,
                               a[i]->data[k], b[i]->data[k]);
}

/* The backup holds the global state (weights, optimizer, step, history),
 * so a run of 2 processes stopped after epoch 2 goes on with 1, and one of
 * 1 goes on with 2, each ending where the run it continues would. */
Test(dist_core, a_backup_resumes_with_another_number_of_processes) {
    nb_dataset d = blobs();
    char dir[] = "/tmp/nabla-dist-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(run_backup, sizeof run_backup, "%s/run.backup", dir);
    snprintf(spare, sizeof spare, "%s/spare.backup", dir);

    job j[RANKS]; /* 2 processes straight through, epoch 2's backup kept */
    backup = run_backup, on_epoch = keep_backup;
    run_ranks(j, (uint64_t[]){3, 3}, &d, false);
    for (int r = 0; r < RANKS; r++) cr_assert_eq(j[r].st, NB_OK, "rank %d: %s", r, j[r].error);
    cr_assert_neq(access(run_backup, F_OK), 0, "the backup outlived the run");
    copy_file(spare, run_backup); /* 1 process goes on from it */
    nb_model *one = net(99);      /* other weights: the backup's replace them */
    nb_fit_opts o = opts();
    o.backup = run_backup;
    cr_assert_eq(nb_fit(one, &d, &o, NULL), NB_OK, "%s", nb_last_error());
    assert_close(one, j[0].m, "2 processes resumed on 1");
    for (int r = 0; r < RANKS; r++) nb_history_free(&j[r].h), nb_model_free(j[r].m);
    nb_model_free(one);

    one = net(3); /* 1 process straight through, epoch 2's backup kept */
    o.on_epoch = keep_backup;
    cr_assert_eq(nb_fit(one, &d, &o, NULL), NB_OK, "%s", nb_last_error());
    copy_file(spare, run_backup); /* 2 processes go on from it */
    on_epoch = NULL;
    run_ranks(j, (uint64_t[]){99, 99}, &d, true);
    for (int r = 0; r < RANKS; r++) cr_assert_eq(j[r].st, NB_OK, "rank %d: %s", r, j[r].error);
    assert_close(j[0].m, one, "1 process resumed on 2");
    for (int r = 0; r < RANKS; r++) nb_history_free(&j[r].h), nb_model_free(j[r].m);
    nb_model_free(one);
    backup = NULL;
    unlink(spare), rmdir(dir);
}

/* ---- custom loops: nb_trainer over processes ---- */

typedef struct step_job {
    rank_ctx ctx;
    nb_fit_dist dist;
    nb_model *m;
    const nb_dataset *d;
    int split;   /* rank 0's rows of each batch of 32 (at most); rank 1 takes the rest */
    int bad_at;  /* > 0: at this step rank 1 feeds a row more than the trainer takes */
    bool sync;
    nb_status st;
    int steps;
    double loss[16];
    char error[512];
} step_job;

static nb_fit_opts step_opts(void) {
    nb_fit_opts o = opts();
    o.optimizer = nb_optimizer_defaults(NB_ADAM);
    return o;
}

static int freeze_at; /* > 0: rank 0 alone freezes the first layer before this step */

/* This rank's part of each batch of 32 of d (in order): 7 steps. */
static void *run_steps(void *arg) {
    step_job *j = arg;
    nb_set_num_threads(1);
    nb_fit_opts o = step_opts();
    o.dist = &j->dist;
    static _Thread_local float x[33 * 6], y[33];
    nb_array in = {NULL, x, 6}, tg = {NULL, y, 1};
    nb_data batch = {0, 1, &in, 1, &tg};
    nb_trainer *t = nb_trainer_new(j->m, &batch, &o);
    j->st = t ? NB_OK : NB_ERROR;
    for (int start = 0; t && start < j->d->n; start += 32) {
        const int b = j->d->n - start < 32 ? j->d->n - start : 32, own = j->split < b ? j->split : b;
        const int lo = j->ctx.rank == 0 ? start : start + own, n = j->ctx.rank == 0 ? own : b - own;
        memcpy(x, j->d->x + (size_t)lo * 6, sizeof(float) * 6 * (size_t)n);
        memcpy(y, j->d->y + lo, sizeof(float) * (size_t)n);
        batch.n = n + (j->ctx.rank == 1 && j->steps + 1 == j->bad_at ? 33 - n : 0);
        if (j->ctx.rank == 0 && j->steps + 1 == freeze_at) nb_layer_set_trainable(nb_model_layer(j->m, 0), false);
        if ((j->st = nb_train_step(t, &batch, &j->loss[j->steps])) != NB_OK) break;
        j->steps++;
    }
    snprintf(j->error, sizeof j->error, "%s", nb_last_error());
    nb_trainer_free(t);
    return NULL;
}

static void run_step_ranks(step_job *j, nb_model *(*model)(uint64_t), const nb_dataset *d, int split, int bad_at,
                           bool sync) {
    static comm c;
    pthread_barrier_init(&c.barrier, NULL, RANKS);
    pthread_t t[RANKS];
    for (int r = 0; r < RANKS; r++) {
        j[r] = (step_job){.ctx = {&c, r}, .m = model(3), .d = d, .split = split, .bad_at = bad_at, .sync = sync};
        j[r].dist = dist_of(&j[r].ctx, false, sync, true);
        pthread_create(&t[r], NULL, run_steps, &j[r]);
    }
    for (int r = 0; r < RANKS; r++) pthread_join(t[r], NULL);
    pthread_barrier_destroy(&c.barrier);
}

/* One trainer on the whole batches of 32, as a reference. */
static nb_model *one_process_steps(nb_model *(*model)(uint64_t), const nb_dataset *d, double *loss) {
    nb_model *m = model(3);
    nb_fit_opts o = step_opts();
    float x[32 * 6], y[32];
    nb_array in = {NULL, x, 6}, tg = {NULL, y, 1};
    nb_data batch = {0, 1, &in, 1, &tg};
    nb_trainer *t = nb_trainer_new(m, &batch, &o);
    cr_assert_not_null(t, "%s", nb_last_error());
    for (int start = 0, k = 0; start < d->n; start += 32, k++) {
        batch.n = d->n - start < 32 ? d->n - start : 32;
        memcpy(x, d->x + (size_t)start * 6, sizeof(float) * 6 * (size_t)batch.n);
        memcpy(y, d->y + start, sizeof(float) * (size_t)batch.n);
        cr_assert_eq(nb_train_step(t, &batch, &loss[k]), NB_OK, "%s", nb_last_error());
    }
    nb_trainer_free(t);
    return m;
}

/* Shares of 16 and 16, and of 20 and 12 (the last batch of 8: rank 0
 * alone, rank 1 feeds no rows), with dropout and RReLU: each ends with one
 * process's weights and losses, and the two processes with the same bits. */
Test(dist_core, trainers_stepping_together_on_their_shares_end_with_one_process_s_weights) {
    nb_dataset d = blobs();
    double ref_loss[16];
    nb_model *one = one_process_steps(dropout_net, &d, ref_loss);
    for (int split = 16; split <= 20; split += 4) {
        step_job j[RANKS];
        run_step_ranks(j, dropout_net, &d, split, 0, false);
        for (int r = 0; r < RANKS; r++) {
            cr_assert_eq(j[r].st, NB_OK, "split %d, rank %d: %s", split, r, j[r].error);
            cr_assert_eq(j[r].steps, 7);
            for (int k = 0; k < 7; k++)
                cr_assert_float_eq(j[r].loss[k], ref_loss[k], 1e-5, "split %d, rank %d, step %d: loss %g against %g",
                                   split, r, k + 1, j[r].loss[k], ref_loss[k]);
        }
        assert_close(j[0].m, one, "rank 0 against one process");
        nb_tensor *const *a, *const *b;
        int n = nb_model_tensors(j[0].m, &a);
        nb_model_tensors(j[1].m, &b);
        for (int i = 0; i < n; i++)
            cr_assert_eq(memcmp(a[i]->data, b[i]->data, a[i]->size * sizeof(float)), 0, "split %d: %s differs", split,
                         a[i]->name);
        for (int r = 0; r < RANKS; r++) nb_model_free(j[r].m);
    }
    nb_model_free(one);
}

/* With synchronized batch norm, two shares of 16 step as one process. */
Test(dist_core, trainers_with_synchronized_batch_norm_end_with_one_process_s_weights) {
    nb_dataset d = blobs();
    nb_dataset even = d;
    even.n = 192; /* no last batch of 8, whose 16/16 split would leave rank 1 without rows */
    double ref_loss[16];
    nb_model *one = one_process_steps(bn_net, &even, ref_loss);
    step_job j[RANKS];
    run_step_ranks(j, bn_net, &even, 16, 0, true);
    for (int r = 0; r < RANKS; r++) cr_assert_eq(j[r].st, NB_OK, "rank %d: %s", r, j[r].error);
    assert_close(j[0].m, one, "rank 0 against one process");
    assert_close(j[1].m, one, "rank 1 against one process");
    for (int r = 0; r < RANKS; r++) nb_model_free(j[r].m);
    /* the same data with its last batch of 8, all on rank 0: refused on both, at step 7 */
    run_step_ranks(j, bn_net, &d, 16, 0, true);
    for (int r = 0; r < RANKS; r++) {
        cr_assert_eq(j[r].st, NB_ERROR, "rank %d stepped on", r);
        cr_assert_eq(j[r].steps, 6);
        cr_assert(strstr(j[r].error, "synchronized batch norm needs rows on every process; process 1 has none"),
                  "rank %d: %s", r, j[r].error);
        nb_model_free(j[r].m);
    }
    nb_model_free(one);
}

/* Rank 1 feeds a batch too large at step 3: both stop there, rank 1 with
 * its own message, rank 0 naming it; a layer frozen on one process only
 * stops both; models that differ are refused when the trainers are built. */
Test(dist_core, a_trainer_failing_on_one_process_stops_both_naming_it, .timeout = 60) {
    nb_dataset d = blobs();
    step_job j[RANKS];
    run_step_ranks(j, net, &d, 16, 3, false);
    for (int r = 0; r < RANKS; r++) cr_assert_eq(j[r].steps, 2, "rank %d took %d steps", r, j[r].steps);
    cr_assert(strstr(j[1].error, "a batch of 33 examples; the trainer takes 0 to 32"), "%s", j[1].error);
    cr_assert(strstr(j[0].error, "process 1 failed at step 3"), "%s", j[0].error);
    for (int r = 0; r < RANKS; r++) nb_model_free(j[r].m);

    /* a layer frozen on rank 0 alone before step 4: both stop there */
    freeze_at = 4;
    run_step_ranks(j, net, &d, 16, 0, false);
    freeze_at = 0;
    for (int r = 0; r < RANKS; r++) {
        cr_assert_eq(j[r].steps, 3, "rank %d took %d steps", r, j[r].steps);
        cr_assert(strstr(j[r].error, "the trainable tensors differ between the processes: rank 1's are not rank 0's"),
                  "rank %d: %s", r, j[r].error);
        nb_model_free(j[r].m);
    }

    static comm c;
    pthread_barrier_init(&c.barrier, NULL, RANKS);
    pthread_t t[RANKS];
    for (int r = 0; r < RANKS; r++) {
        j[r] = (step_job){.ctx = {&c, r}, .m = net(3 + (uint64_t)r), .d = &d, .split = 16};
        j[r].dist = dist_of(&j[r].ctx, false, false, false);
        pthread_create(&t[r], NULL, run_steps, &j[r]);
    }
    for (int r = 0; r < RANKS; r++) pthread_join(t[r], NULL);
    pthread_barrier_destroy(&c.barrier);
    for (int r = 0; r < RANKS; r++) {
        cr_assert_eq(j[r].st, NB_ERROR);
        cr_assert(strstr(j[r].error, "the models' weights differ between the processes: rank 1's are not rank 0's"),
                  "rank %d: %s", r, j[r].error);
        nb_model_free(j[r].m);
    }
}
