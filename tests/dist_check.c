/* tests/dist_check.c — run under mpirun by test_dist_mpi.c.
 *   dist_check equal   2 processes, one epoch on 2,000 examples at a global
 *                      batch of 32, batch norm synchronized, the weights
 *                      checked alike every epoch;
 *                      rank 0 then trains the same model alone and prints
 *                      the largest difference (exit 1 above 1e-5)
 *   dist_check steps   the same epoch through nb_trainer (a custom loop):
 *                      each process steps on its half of every batch of 32;
 *                      rank 0 then steps alone on the whole batches and
 *                      prints the largest difference (exit 1 above 1e-5)
 *   dist_check kill    rank 1 kills itself (SIGKILL) in the middle of the
 *                      epoch: mpirun must end the job, naming it */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "nabla/dist.h"
#include "nabla/nabla.h"

static float xs[2000 * 8], ys[2000];

/* An epoch of batches of 32 in order through an nb_trainer; with
 * processes, each feeds its half of every batch. */
static nb_status steps(nb_model *m, const nb_fit_opts *o, int rank, int size) {
    nb_array in = {NULL, xs, 8}, tg = {NULL, ys, 1};
    nb_data batch = {0, 1, &in, 1, &tg};
    nb_trainer *t = nb_trainer_new(m, &batch, o);
    nb_status st = t ? NB_OK : NB_ERROR;
    for (int start = 0; st == NB_OK && start < 2000; start += 32) {
        const int b = 2000 - start < 32 ? 2000 - start : 32;
        const int lo = start + b * rank / size, hi = start + b * (rank + 1) / size;
        in.data = xs + (size_t)lo * 8, tg.data = ys + lo, batch.n = hi - lo;
        st = nb_train_step(t, &batch, NULL);
    }
    nb_trainer_free(t);
    return st;
}

static nb_model *net(void) {
    nb_model *m = nb_model_new(1, (int[]){8}, 11);
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 32, .no_bias = true});
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_BATCH_NORM});
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_ACTIVATION, .activation = "relu"});
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 4});
    return m;
}

/* The real sums, and rank 1 dying at its 20th gradient sum (started in
 * backward, or not). */
static const nb_fit_dist *real;
static nb_fit_dist dying;
static int calls;

static nb_status sum_floats_then_die(void *user, float *v, size_t n) {
    if (dying.rank == 1 && ++calls == 20) raise(SIGKILL);
    return real->sum_floats(user, v, n);
}

static nb_status start_sum_then_die(void *user, float *v, size_t n) {
    if (dying.rank == 1 && ++calls == 20) raise(SIGKILL);
    return real->start_sum_floats(user, v, n);
}

int main(int argc, char **argv) {
    nb_dist *d = nb_dist_init(&argc, &argv);
    if (!d || argc != 2)
        return fprintf(stderr, "dist_check: %s\n", d ? "usage: dist_check equal|steps|kill" : nb_last_error()), 2;
    const bool custom = !strcmp(argv[1], "steps");
    nb_set_num_threads(1);
    nb_rng r;
    nb_rng_seed(&r, 2, 0);
    for (int i = 0; i < 2000; i++) {
        ys[i] = (float)(i % 4);
        for (int k = 0; k < 8; k++) xs[i * 8 + k] = nb_rng_uniform(&r) - 0.5f + (k % 4 == i % 4);
    }
    nb_dataset data = {.x = xs, .y = ys, .n = 2000, .dim = 8, .rows = 1, .cols = 8, .n_classes = 4};
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = 1, o.batch_size = 32, o.verbose = 0, o.seed = 5, o.optimizer = nb_optimizer_defaults(NB_NADAM);
    real = nb_dist_fit(d, true);
    if (!real) return fprintf(stderr, "dist_check: run me under mpirun -np 2\n"), 2;
    nb_fit_dist synced = *real;
    synced.sync_batchnorm = true;
    o.dist = &synced;
    if (!strcmp(argv[1], "kill")) {
        dying = synced;
        dying.sum_floats = sum_floats_then_die;
        if (dying.start_sum_floats) dying.start_sum_floats = start_sum_then_die;
        o.dist = &dying;
    }
    nb_model *m = net();
    if ((custom ? steps(m, &o, nb_dist_rank(d), nb_dist_size(d)) : nb_fit(m, &data, &o, NULL)) != NB_OK)
        return fprintf(stderr, "rank %d: %s\n", nb_dist_rank(d), nb_last_error()), 1;
    long calls_made;
    const double secs = nb_dist_allreduce_seconds(d, &calls_made);
    int status = 0;
    if (nb_dist_rank(d) == 0) {
        nb_model *alone = net();
        o.dist = NULL;
        if ((custom ? steps(alone, &o, 0, 1) : nb_fit(alone, &data, &o, NULL)) != NB_OK)
            return fprintf(stderr, "alone: %s\n", nb_last_error()), 1;
        nb_tensor *const *a, *const *b;
        int n = nb_model_tensors(m, &a);
        nb_model_tensors(alone, &b);
        double worst = 0;
        for (int i = 0; i < n; i++)
            for (size_t k = 0; k < a[i]->size; k++) worst = fmax(worst, fabs((double)a[i]->data[k] - b[i]->data[k]));
        printf("%s%d processes against one: largest weight difference %.3g after one epoch (%ld allreduces, %.3f s)\n",
               custom ? "custom loop: " : "", nb_dist_size(d), worst, calls_made, secs);
        status = worst <= 1e-5 ? 0 : 1;
        nb_model_free(alone);
    }
    nb_model_free(m);
    nb_dist_free(d);
    return status;
}
