/* benchmarks/selu_check.c — nabla's side of the SELU cross-check against
 * PyTorch (benchmarks/selu_check.py holds the other side and the steps).
 *
 * The chapter's net (examples/ch11_selu.c: 100 Dense layers of 100, SELU,
 * LeCun normal, inputs standardized per pixel with the training set's
 * mean and std) is built with lab_net, and this program writes into OUTDIR:
 *   init.safetensors  the initial weights (nb_model_save)
 *   x.f32, y.f32      the first STEPS×32 standardized training images
 *                     (float32, row-major) and their labels, the batches
 *                     in order, so PyTorch sees the very same numbers
 *   probe.csv         on batch 0 at initialization, per hidden layer: the
 *                     mean and std of its outputs, the norm of the loss's
 *                     gradient with respect to them and to its kernel; and
 *                     the loss (layer 0)
 *   steps.csv         step, loss: STEPS steps of SGD with Nesterov momentum
 *                     0.9 at lr 1e-3 on those batches, in order, unshuffled
 *                     (nb_trainer, as fit steps)
 *
 *   selu-check OUTDIR [STEPS (300)] [SEED (42)]
 *
 * With STEPS 0 it instead trains the net as examples/ch11_selu.c does
 * (nb_fit: 55,000 images shuffled per epoch, the last 5,000 of the 60,000
 * for validation, EPOCHS epochs) and prints each epoch's validation
 * accuracy, at the chapter's rate or another:
 *   selu-check OUTDIR 0 SEED [EPOCHS (5)] [LR (0.001)]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

#define DEPTH 100
#define BATCH 32

static bool write_floats(const char *dir, const char *name, const float *v, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(v, sizeof *v, n, f) == n;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) fprintf(stderr, "selu-check: cannot write %s\n", path);
    return ok;
}

static int fit(const lab_args *a, nb_dataset *train, nb_dataset *valid, uint64_t seed, int epochs, float lr) {
    lab_net_cfg nc = {.depth = DEPTH, .width = 100, .activation = "selu", .init = "lecun_normal",
                      .in_dim = train->dim, .classes = 10, .seed = seed};
    nb_model *m = lab_net(&nc, NULL, NULL);
    if (!m) return lab_fail(a, "model");
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = epochs, o.seed = seed, o.verbose = 0, o.validation = valid;
    o.optimizer = nb_optimizer_defaults(NB_NESTEROV), o.optimizer.lr = lr;
    nb_history h;
    nb_status rc = nb_fit(m, train, &o, &h);
    for (int e = 0; e < h.n_epochs; e++)
        printf("lr %g seed %llu epoch %d: loss %.4f val_loss %.4f val_accuracy %.4f\n", (double)lr, (unsigned long long)seed, e + 1,
               h.epochs[e].loss, h.epochs[e].val_loss, h.epochs[e].val_accuracy);
    if (rc != NB_OK) printf("seed %llu: %s\n", (unsigned long long)seed, nb_last_error());
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(train), nb_dataset_free(valid);
    return rc == NB_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: selu-check OUTDIR [STEPS] [SEED]\n");
        return 2;
    }
    const char *dir = argv[1];
    int steps = argc > 2 ? atoi(argv[2]) : 300;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 42;
    if (steps < 0 || steps * BATCH > 55000) return fprintf(stderr, "selu-check: STEPS in 0..1718\n"), 2;

    lab_args a = {.prog = "selu-check", .out = dir, .seeds = 1};
    nb_dataset train, valid, test;
    if (!lab_load(&a, 55000, steps ? 0 : 5000, 0, true, &train, &valid, &test)) return lab_fail(&a, "data");
    if (steps == 0) return fit(&a, &train, &valid, seed, argc > 4 ? atoi(argv[4]) : 5, argc > 5 ? strtof(argv[5], NULL) : 0.001f);
    size_t n = (size_t)steps * BATCH, dim = (size_t)train.dim;
    if (!write_floats(dir, "x.f32", train.x, n * dim) || !write_floats(dir, "y.f32", train.y, n)) return 3;

    nb_layer *out[DEPTH], *dense[DEPTH];
    lab_net_cfg nc = {.depth = DEPTH, .width = 100, .activation = "selu", .init = "lecun_normal",
                      .in_dim = train.dim, .classes = 10, .seed = seed};
    nb_model *m = lab_net(&nc, out, dense);
    if (!m) return lab_fail(&a, "model");
    char path[4096];
    snprintf(path, sizeof path, "%s/init.safetensors", dir);
    if (nb_model_save(m, path) != NB_OK) return lab_fail(&a, "save");

    lab_probe p;
    if (!lab_probe_new(&p, m, DEPTH, out, dense, BATCH, train.dim) || !lab_probe_run(&p, train.x, train.y, BATCH))
        return lab_fail(&a, "probe");
    snprintf(path, sizeof path, "%s/probe.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 3;
    fprintf(f, "layer,mean,std,grad_out,grad_kernel\n0,%.9g,0,0,0\n", (double)nb_node_value(p.loss)[0]);
    for (int i = 0; i < DEPTH; i++) {
        double mean, sd, q = 0;
        lab_probe_stats(&p, i, &mean, &sd);
        const float *g = nb_node_grad(p.out[i]);
        for (size_t k = 0; k < nb_node_size(p.out[i]); k++) q += (double)g[k] * g[k];
        fprintf(f, "%d,%.9g,%.9g,%.9g,%.9g\n", i + 1, mean, sd, sqrt(q), lab_grad_norm(p.kernel[i]));
    }
    fclose(f);
    lab_probe_free(&p);

    nb_fit_opts o = nb_fit_defaults();
    o.optimizer = nb_optimizer_defaults(NB_NESTEROV), o.optimizer.lr = 0.001f;
    o.allow_nonfinite = true;
    nb_array xa = {NULL, NULL, train.dim}, ya = {NULL, NULL, 1};
    nb_data layout = {BATCH, 1, &xa, 1, &ya};
    nb_trainer *t = nb_trainer_new(m, &layout, &o);
    if (!t) return lab_fail(&a, "trainer");
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    f = fopen(path, "w");
    if (!f) return 3;
    fprintf(f, "step,loss\n");
    for (int s = 0; s < steps; s++) {
        xa.data = train.x + (size_t)s * BATCH * dim, ya.data = train.y + (size_t)s * BATCH;
        double loss;
        if (nb_train_step(t, &layout, &loss) != NB_OK) return lab_fail(&a, "step");
        fprintf(f, "%d,%.9g\n", s + 1, loss);
    }
    fclose(f);
    nb_trainer_free(t);
    nb_model_free(m);
    nb_dataset_free(&train);
    return 0;
}
