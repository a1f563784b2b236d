/* bench-dist — data-parallel training's cost (issue 12): the book's models
 * a (784-300-100-10, ReLU) and c (20 x [Dense(100), batch norm, ELU]) for
 * one epoch on Fashion-MNIST images at a global batch, on the processes
 * mpirun starts (or alone), and the time spent in the gradients'
 * allreduces. Run by benchmarks/dist.sh:
 *
 *   mpirun -np 2 bench-dist --model a --batch 256 --threads 1 [--images N]
 *   bench-dist --model a --batch 256 --threads 2
 *
 *   mpirun -np 2 bench-dist ... --overlap off [--bucket-kb K]
 *
 * Prints one line from rank 0: processes, threads, model, batch, median
 * step time over 3 epochs (each on a fresh model, after a warm-up), and
 * the time per step spent in the gradients' sums' MPI calls with its share
 * of the step. With --overlap on (the default) the sums start during
 * backward (MPI_Iallreduce per bucket) and that time is what backward did
 * not hide; with off they run after backward, blocking, and it is all of
 * it: the share overlapped is 1 - on/off, from two runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/dist.h"
#include "nabla/nabla.h"

static nb_layer_spec dense(int units, const char *act, bool no_bias) {
    nb_layer_spec s = nb_dense_spec(units, act, "he_normal");
    s.no_bias = no_bias;
    return s;
}

static nb_model *model_of(char model) {
    nb_model *m = nb_model_new(2, (int[]){28, 28}, 42);
    nb_layer_spec s;
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_FLATTEN});
    if (model == 'a') {
        s = dense(300, "relu", false), nb_model_add(m, &s);
        s = dense(100, "relu", false), nb_model_add(m, &s);
    } else {
        for (int i = 0; i < 20; i++) {
            s = dense(100, NULL, true), nb_model_add(m, &s);
            s = nb_batch_norm_spec(), nb_model_add(m, &s);
            s = nb_activation_spec("elu"), nb_model_add(m, &s);
        }
    }
    s = dense(10, NULL, false);
    return nb_model_add(m, &s) ? m : (nb_model_free(m), NULL);
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    nb_dist *d = nb_dist_init(&argc, &argv);
    if (!d) return fprintf(stderr, "bench-dist: %s\n", nb_last_error()), 1;
    char model = 'a';
    int batch = 256, threads = 1, images = 11000, bucket_kb = 0;
    bool overlap = true;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1][0];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--images")) images = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--bucket-kb")) bucket_kb = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--overlap") && (!strcmp(argv[i + 1], "on") || !strcmp(argv[i + 1], "off")))
            overlap = !strcmp(argv[i + 1], "on");
        else
            return fprintf(stderr, "usage: bench-dist [--model a|c] [--batch N] [--threads T] [--images N] "
                                   "[--overlap on|off] [--bucket-kb K]\n"),
                   2;
    }
    if ((model != 'a' && model != 'c') || batch < 1 || threads < 1 || images < batch || bucket_kb < 0)
        return fprintf(stderr, "bench-dist: bad arguments\n"), 2;
    nb_set_num_threads(threads);
    nb_set_thread_adaptation(false); /* the count asked for, as nabla-bench does */
    nb_dataset train, test;
    if (nb_load_mnist_dir(NULL, &train, &test) != NB_OK) return fprintf(stderr, "bench-dist: %s\n", nb_last_error()), 1;
    nb_dataset_scale(&train, 1.0f / 255);
    train.n = images;
    nb_fit_opts o = nb_fit_defaults();
    o.batch_size = batch, o.verbose = 0, o.seed = 42;
    o.optimizer = model == 'a' ? nb_optimizer_defaults(NB_SGD) : nb_optimizer_defaults(NB_NADAM);
    nb_dist_set_buckets(d, overlap, (size_t)bucket_kb * 1024);
    o.dist = nb_dist_fit(d, false);
    /* warm-up: thread pools, caches, the transport's buffers */
    nb_dataset warm = train;
    warm.n = 8 * batch < images ? 8 * batch : images;
    nb_model *m = model_of(model);
    if (!m || nb_fit(m, &warm, &o, NULL) != NB_OK) return fprintf(stderr, "bench-dist: %s\n", nb_last_error()), 1;
    nb_model_free(m);
    double step[3], reduce[3];
    const int steps = (images + batch - 1) / batch;
    for (int r = 0; r < 3; r++) {
        long calls0, calls1;
        const double r0 = nb_dist_allreduce_seconds(d, &calls0);
        nb_history h;
        m = model_of(model);
        if (nb_fit(m, &train, &o, &h) != NB_OK) return fprintf(stderr, "bench-dist: %s\n", nb_last_error()), 1;
        reduce[r] = (nb_dist_allreduce_seconds(d, &calls1) - r0) / steps;
        step[r] = h.train_seconds / steps;
        nb_history_free(&h);
        nb_model_free(m);
    }
    qsort(step, 3, sizeof *step, cmp);
    qsort(reduce, 3, sizeof *reduce, cmp);
    if (nb_dist_rank(d) == 0)
        printf("processes %d threads %d model %c batch %d: %.3f ms/step (median of 3 epochs of %d images), "
               "sums %s backward %.3f ms/step (%.0f%% of the step), buckets %d KiB\n",
               nb_dist_size(d), threads, model, batch, 1e3 * step[1], images, overlap ? "during" : "after",
               1e3 * reduce[1], 100 * reduce[1] / step[1], bucket_kb ? bucket_kb : 256);
    nb_dataset_free(&train), nb_dataset_free(&test);
    nb_dist_free(d);
    return 0;
}
