/* examples/ch11_batchnorm.c — batch normalization and gradient clipping.
 *
 * Part 1: a 10-layer net of 100 with sigmoid (Glorot) and with ReLU (He),
 * each without batch normalization, with it between the Dense layer and
 * the activation (the chapter's choice: Dense without bias -> BN ->
 * activation) and with it after the activation: validation accuracy per
 * epoch, mean ± std over seeds. The chapter: batch normalization lets even
 * the logistic activation train a deep net, and converges in fewer epochs.
 * Part 2: an exploding configuration (10 ReLU layers with weights of twice
 * He's variance, SGD with momentum at Keras's default rate) trained without
 * clipping and with clipping by value, by norm and by global norm
 * (Keras's clipvalue, clipnorm, global_clipnorm): does it diverge, and the
 * final accuracy.
 * Part 3: batch normalization as the first layer in place of
 * standardization (the chapter's Keras model starts with one): the ReLU
 * net on raw pixels (0-255) with and without it, against the same net on
 * standardized pixels and on pixels scaled to [0,1].
 *
 *   ch11_batchnorm [--quick] [--data DIR] [--seeds N] OUTDIR
 *
 * Claims checked, every seed: with sigmoid, batch normalization (in either
 * place) is over 0.1 ahead of no batch normalization after the last
 * epoch; the exploding configuration diverges or ends below 0.3 accuracy
 * without clipping, and each clipping mode trains it to over 0.45; on raw
 * pixels, the net with an input BN layer ends within 0.03 of (or above) the
 * net on standardized pixels, on the seeds' mean. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

#define MAX_SEEDS 16
#define MAX_EPOCHS 64
#define N_BN 6
#define N_CLIP 4
#define N_IN 4

static const struct {
    const char *name;
    int pixels; /* 0: [0,1], 1: standardized, 2: raw 0-255 */
    bool input_bn;
} ins[N_IN] = {
    {"pixels in [0,1]", 0, false},
    {"standardized pixels", 1, false},
    {"raw pixels (0-255)", 2, false},
    {"raw pixels, BN as first layer", 2, true},
};

/* A copy of d with its pixels times 255 (the file's raw bytes); x owned. */
static bool raw_pixels(const nb_dataset *d, nb_dataset *out) {
    *out = *d;
    float *x = malloc((size_t)d->n * (size_t)d->dim * sizeof *x);
    if (!x) return false;
    for (size_t i = 0; i < (size_t)d->n * (size_t)d->dim; i++) x[i] = 255 * d->x[i];
    out->x = x;
    return true;
}

static const struct {
    const char *name, *activation, *init;
    bool bn, after;
} bns[N_BN] = {
    {"sigmoid, no BN", "sigmoid", "glorot_uniform", false, false},
    {"sigmoid, BN before activation", "sigmoid", "glorot_uniform", true, false},
    {"sigmoid, BN after activation", "sigmoid", "glorot_uniform", true, true},
    {"ReLU, no BN", "relu", "he_normal", false, false},
    {"ReLU, BN before activation", "relu", "he_normal", true, false},
    {"ReLU, BN after activation", "relu", "he_normal", true, true},
};

static const char *clip_names[N_CLIP] = {"no clipping", "clipvalue 1", "clipnorm 1", "global_clipnorm 1"};

int main(int argc, char **argv) {
    lab_args a;
    if (!lab_parse(argc, argv, "ch11_batchnorm", &a)) return 2;
    if (a.seeds > MAX_SEEDS) a.seeds = MAX_SEEDS;
    int n_train = a.quick ? 5000 : 20000, n_valid = a.quick ? 1000 : 5000, epochs = a.quick ? 2 : 5;
    int depth = 10;
    nb_dataset train, valid, test, std_train, std_valid, std_test, raw_train, raw_valid;
    if (!lab_load(&a, n_train, n_valid, 0, false, &train, &valid, &test) ||
        !lab_load(&a, n_train, n_valid, 0, true, &std_train, &std_valid, &std_test) ||
        !raw_pixels(&train, &raw_train) || !raw_pixels(&valid, &raw_valid))
        return lab_fail(&a, "data");

    /* quick mode: the sigmoid nets only (the claim's), and the clipping
     * runs on 2,000 images */
    int n_bn = a.quick ? 3 : N_BN;
    nb_dataset clip_train;
    if (nb_dataset_slice(&train, 0, a.quick ? 2000 : n_train, &clip_train) != NB_OK) return lab_fail(&a, "data");
    static double val[N_BN][MAX_SEEDS][MAX_EPOCHS];
    for (int k = 0; k < n_bn; k++)
        for (int s = 0; s < a.seeds; s++) {
            lab_net_cfg nc = {.depth = depth, .width = 100, .activation = bns[k].activation, .init = bns[k].init,
                              .batch_norm = bns[k].bn, .bn_after = bns[k].after, .in_dim = train.dim,
                              .classes = 10, .seed = 42 + (uint64_t)s};
            nb_model *m = lab_net(&nc, NULL, NULL);
            if (!m) return lab_fail(&a, "model");
            nb_fit_opts o = nb_fit_defaults();
            o.epochs = epochs, o.seed = 42 + (uint64_t)s, o.verbose = 0, o.validation = &valid;
            o.optimizer = nb_optimizer_defaults(NB_MOMENTUM);
            nb_history h;
            if (nb_fit(m, &train, &o, &h) != NB_OK) return lab_fail(&a, bns[k].name);
            for (int e = 0; e < epochs; e++) val[k][s][e] = h.epochs[e].val_accuracy;
            fprintf(stderr, "%s seed %d: %.4f\n", bns[k].name, s, val[k][s][epochs - 1]);
            nb_history_free(&h), nb_model_free(m);
        }

    /* part 2: clipping an exploding net */
    static double cacc[N_CLIP][MAX_SEEDS], cdiv[N_CLIP][MAX_SEEDS], closs1[N_CLIP][MAX_SEEDS];
    const float big_lr = 0.01f; /* Keras's default: only the weights are too large */
    for (int k = 0; k < N_CLIP; k++)
        for (int s = 0; s < a.seeds; s++) {
            lab_net_cfg nc = {.depth = depth, .width = 100, .activation = "relu",
                              .init = "variance_scaling(4,fan_in,normal)", .in_dim = train.dim, .classes = 10,
                              .seed = 42 + (uint64_t)s};
            nb_model *m = lab_net(&nc, NULL, NULL);
            if (!m) return lab_fail(&a, "model");
            nb_fit_opts o = nb_fit_defaults();
            o.epochs = epochs, o.seed = 42 + (uint64_t)s, o.verbose = 0, o.validation = &valid;
            o.optimizer = nb_optimizer_defaults(NB_MOMENTUM);
            o.optimizer.lr = big_lr;
            if (k == 1) o.optimizer.clip_value = 1;
            if (k == 2) o.optimizer.clip_norm = 1;
            if (k == 3) o.optimizer.clip_global_norm = 1;
            nb_history h;
            nb_status rc = nb_fit(m, &clip_train, &o, &h);
            if (rc != NB_OK && !h.diverged) return lab_fail(&a, clip_names[k]);
            cdiv[k][s] = h.diverged;
            closs1[k][s] = h.n_epochs > 0 ? h.epochs[0].loss : NAN;
            cacc[k][s] = h.diverged || h.n_epochs < epochs ? NAN : h.epochs[epochs - 1].val_accuracy;
            if (!h.diverged) {
                double acc; /* a net that ends with NaN weights without tripping the check */
                if (nb_evaluate(m, &valid, 256, NULL, &acc) != NB_OK || !isfinite(acc)) acc = NAN;
                cacc[k][s] = acc;
            }
            fprintf(stderr, "%s seed %d: diverged %d acc %.4f\n", clip_names[k], s, h.diverged, cacc[k][s]);
            nb_history_free(&h), nb_model_free(m);
        }

    /* part 3: batch normalization in place of standardization */
    static double iacc[N_IN][MAX_SEEDS], ival[N_IN][MAX_SEEDS][MAX_EPOCHS];
    const nb_dataset *in_train[] = {&train, &std_train, &raw_train}, *in_valid[] = {&valid, &std_valid, &raw_valid};
    for (int k = 0; k < N_IN; k++)
        for (int s = 0; s < a.seeds; s++) {
            lab_net_cfg nc = {.depth = depth, .width = 100, .activation = "relu", .init = "he_normal",
                              .input_bn = ins[k].input_bn, .in_dim = train.dim, .classes = 10,
                              .seed = 42 + (uint64_t)s};
            nb_model *m = lab_net(&nc, NULL, NULL);
            if (!m) return lab_fail(&a, "model");
            nb_fit_opts o = nb_fit_defaults();
            o.epochs = epochs, o.seed = 42 + (uint64_t)s, o.verbose = 0, o.validation = in_valid[ins[k].pixels];
            o.optimizer = nb_optimizer_defaults(NB_MOMENTUM);
            nb_history h;
            nb_status rc = nb_fit(m, in_train[ins[k].pixels], &o, &h);
            if (rc != NB_OK && !h.diverged) return lab_fail(&a, ins[k].name);
            for (int e = 0; e < epochs; e++) ival[k][s][e] = e < h.n_epochs && !h.diverged ? h.epochs[e].val_accuracy : NAN;
            iacc[k][s] = ival[k][s][epochs - 1];
            fprintf(stderr, "%s seed %d: %.4f\n", ins[k].name, s, iacc[k][s]);
            nb_history_free(&h), nb_model_free(m);
        }

    lab_md md;
    if (!lab_md_open(&md, &a, "Batch normalization and gradient clipping")) return 3;
    lab_md_printf(&md,
                  "%d Dense layers of 100 + Dense(10), %d training images, %d validation images, SGD with momentum "
                  "0.9 at lr 0.01, batch 32, %d epochs, seeds 42..%d. BN before activation: Dense without bias -> "
                  "BatchNormalization -> activation; after: Dense with activation -> BatchNormalization.\n\n",
                  depth, n_train, n_valid, epochs, 41 + a.seeds);
    const char *cols[] = {"network", "val. acc., epoch 1", "val. acc., last epoch"};
    lab_md_header(&md, 3, cols);
    static double mean_curve[N_BN][MAX_EPOCHS], ep[MAX_EPOCHS];
    for (int k = 0; k < n_bn; k++) {
        double e1[MAX_SEEDS], fin[MAX_SEEDS];
        for (int s = 0; s < a.seeds; s++) e1[s] = val[k][s][0], fin[s] = val[k][s][epochs - 1];
        for (int e = 0; e < epochs; e++) {
            double v[MAX_SEEDS];
            for (int s = 0; s < a.seeds; s++) v[s] = val[k][s][e];
            lab_mean_std(v, a.seeds, &mean_curve[k][e], NULL);
        }
        char b1[64], b2[64];
        lab_md_printf(&md, "| %s | %s | %s |\n", bns[k].name, lab_pm(b1, 64, e1, a.seeds, 4),
                      lab_pm(b2, 64, fin, a.seeds, 4));
    }
    lab_md_printf(&md, "\n");
    for (int e = 0; e < MAX_EPOCHS; e++) ep[e] = e + 1;
    lab_curve cv[N_BN];
    for (int k = 0; k < n_bn; k++) cv[k] = (lab_curve){bns[k].name, epochs, ep, mean_curve[k]};
    lab_fig fv = {"validation accuracy (mean over seeds)", "epoch", "accuracy", .style = "linespoints",
                  .key = "outside"};
    lab_md_figure(&md, &a, "ch11_batchnorm_val.png", lab_plot(&a, "ch11_batchnorm_val.png", &fv, n_bn, cv),
                  "validation accuracy with and without batch normalization");

    lab_md_printf(&md,
                  "### Gradient clipping\n\nThe exploding net: %d ReLU layers of 100 with weights of twice He's "
                  "variance (variance_scaling(4, fan_in, normal)), SGD with momentum 0.9 at lr %.2g, %d training "
                  "images, otherwise as above. \"Diverged\": nb_fit stopped at a non-finite loss.\n\n",
                  depth, big_lr, clip_train.n);
    const char *cols2[] = {"clipping", "diverged (seeds)", "training loss, epoch 1", "final val. accuracy"};
    lab_md_header(&md, 4, cols2);
    for (int k = 0; k < N_CLIP; k++) {
        int nd = 0, nf = 0;
        double fin[MAX_SEEDS], l1[MAX_SEEDS];
        int nl = 0;
        for (int s = 0; s < a.seeds; s++) {
            nd += cdiv[k][s] != 0;
            if (isfinite(cacc[k][s])) fin[nf++] = cacc[k][s];
            if (isfinite(closs1[k][s])) l1[nl++] = closs1[k][s];
        }
        char b1[64] = "–", b2[80] = "–";
        if (nl) lab_pm(b1, 64, l1, nl, 4);
        if (nf) {
            char t[64];
            snprintf(b2, sizeof b2, "%s%s", lab_pm(t, 64, fin, nf, 4), nf < a.seeds ? " (finite runs)" : "");
        }
        lab_md_printf(&md, "| %s | %d/%d | %s | %s |\n", clip_names[k], nd, a.seeds, b1, b2);
    }
    lab_md_printf(&md, "\n");

    lab_md_printf(&md,
                  "### Batch normalization in place of standardization\n\nThe ReLU net of the first table (He "
                  "normal, no other batch normalization), trained as above on the same images given four ways; "
                  "standardized: per pixel, with the training images' mean and deviation; \"BN as first layer\": "
                  "BatchNormalization on the raw pixels before the first Dense layer, as the chapter's Keras model "
                  "starts. A diverged run (a non-finite loss) counts as no accuracy.\n\n");
    const char *cols3[] = {"inputs", "val. acc., epoch 1", "val. acc., last epoch"};
    lab_md_header(&md, 3, cols3);
    static double in_curve[N_IN][MAX_EPOCHS];
    for (int k = 0; k < N_IN; k++) {
        double e1[MAX_SEEDS], fin[MAX_SEEDS];
        int n1 = 0, nf = 0;
        for (int s = 0; s < a.seeds; s++) {
            if (isfinite(ival[k][s][0])) e1[n1++] = ival[k][s][0];
            if (isfinite(iacc[k][s])) fin[nf++] = iacc[k][s];
        }
        for (int e = 0; e < epochs; e++) {
            double v[MAX_SEEDS];
            int nv = 0;
            for (int s = 0; s < a.seeds; s++)
                if (isfinite(ival[k][s][e])) v[nv++] = ival[k][s][e];
            if (nv) lab_mean_std(v, nv, &in_curve[k][e], NULL);
            else in_curve[k][e] = NAN;
        }
        char b1[64] = "diverged", b2[80] = "diverged", t[64];
        if (n1) lab_pm(b1, 64, e1, n1, 4);
        if (nf) snprintf(b2, sizeof b2, "%s%s", lab_pm(t, 64, fin, nf, 4), nf < a.seeds ? " (finite runs)" : "");
        lab_md_printf(&md, "| %s | %s | %s |\n", ins[k].name, b1, b2);
    }
    lab_md_printf(&md, "\n");
    lab_curve ci[N_IN];
    for (int k = 0; k < N_IN; k++) ci[k] = (lab_curve){ins[k].name, epochs, ep, in_curve[k]};
    lab_fig fi = {"ReLU net: validation accuracy by input scaling (mean over seeds)", "epoch", "accuracy",
                  .style = "linespoints", .key = "outside"};
    lab_md_figure(&md, &a, "ch11_batchnorm_inputs.png", lab_plot(&a, "ch11_batchnorm_inputs.png", &fi, N_IN, ci),
                  "batch normalization in place of standardization");

    double m_std, m_bn;
    lab_mean_std(iacc[1], a.seeds, &m_std, NULL), lab_mean_std(iacc[3], a.seeds, &m_bn, NULL);
    bool ok = isfinite(m_bn) && m_bn >= m_std - 0.03;
    for (int s = 0; s < a.seeds; s++) {
        int L = epochs - 1;
        ok = ok && val[1][s][L] > val[0][s][L] + 0.1 && val[2][s][L] > val[0][s][L] + 0.1;
        ok = ok && (cdiv[0][s] || !(cacc[0][s] >= 0.3));
        for (int k = 1; k < N_CLIP; k++) ok = ok && !cdiv[k][s] && cacc[k][s] > 0.45;
    }
    lab_md_printf(&md,
                  "Claims checked, every seed: with sigmoid, batch normalization before or after the activation is "
                  "over 0.1 ahead of none after the last epoch; the exploding net diverges or ends below 0.3 without "
                  "clipping, and trains to over 0.45 with each clipping mode; on raw pixels, the net with batch "
                  "normalization as its first layer ends within 0.03 of the net on standardized pixels, or above, "
                  "on the seeds' mean: **%s**\n",
                  ok ? "holds" : "FAILS");
    if (!lab_md_close(&md)) return 3;
    nb_dataset_free(&train), nb_dataset_free(&valid), nb_dataset_free(&clip_train);
    nb_dataset_free(&std_train), nb_dataset_free(&std_valid), nb_dataset_free(&std_test), nb_dataset_free(&test);
    free((float *)raw_train.x), free((float *)raw_valid.x);
    return ok ? 0 : 1;
}
