/* examples/ch11_regularization.c — the chapter's regularizers on a net
 * that overfits (few training images, many epochs): none, l1, l2, dropout,
 * alpha dropout with SELU (against SELU without it), max-norm, and MC
 * dropout on the dropout net with its expected calibration error.
 * Measures training and validation accuracy (the gap is the overfitting),
 * the validation loss, mean ± std over seeds; for MC dropout the accuracy,
 * the negative log-likelihood and the ECE (15 equal-width confidence bins)
 * of the mean of the stochastic predictions against the plain prediction.
 *
 *   ch11_regularization [--quick] [--data DIR] [--seeds N] OUTDIR
 *
 * Claims checked, every seed: l2 and dropout each leave a smaller gap
 * between training and validation accuracy than no regularization; MC
 * dropout's accuracy is within 0.01 of the plain prediction's or better,
 * and its calibration error is lower. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

#define MAX_SEEDS 16
#define N_REG 7
#define BINS 15

static const struct {
    const char *name, *activation, *init;
    float l1, l2, dropout, alpha_dropout, max_norm;
    bool standardize;
} regs[N_REG] = {
    {"none (ELU, He)", "elu", "he_normal", 0, 0, 0, 0, 0, false},
    {"l1 1e-4", "elu", "he_normal", 1e-4f, 0, 0, 0, 0, false},
    {"l2 1e-3", "elu", "he_normal", 0, 1e-3f, 0, 0, 0, false},
    {"dropout 0.2", "elu", "he_normal", 0, 0, 0.2f, 0, 0, false},
    {"max-norm 1", "elu", "he_normal", 0, 0, 0, 0, 1.0f, false},
    {"none (SELU, LeCun, standardized)", "selu", "lecun_normal", 0, 0, 0, 0, 0, true},
    {"alpha dropout 0.1 (SELU)", "selu", "lecun_normal", 0, 0, 0, 0.1f, 0, true},
};

/* The reliability diagram's sums: per confidence bin, the predictions'
 * confidences summed, those that were right, and their count. */
typedef struct bins {
    double conf[BINS], right[BINS], count[BINS];
} bins;

/* accuracy, mean negative log-likelihood and expected calibration error of
 * probabilities p [n, 10] against the labels; the bins' sums added to *all */
static void scores(const float *p, const nb_dataset *d, double *acc, double *nll, double *ece, bins *all) {
    double conf_sum[BINS] = {0}, right[BINS] = {0}, count[BINS] = {0}, good = 0, ll = 0;
    for (int i = 0; i < d->n; i++) {
        const float *r = p + (size_t)i * 10;
        int best = 0;
        for (int c = 1; c < 10; c++)
            if (r[c] > r[best]) best = c;
        int label = (int)d->y[i], b = (int)(r[best] * BINS);
        if (b >= BINS) b = BINS - 1;
        conf_sum[b] += r[best], count[b]++, right[b] += best == label;
        good += best == label;
        ll -= log(fmax(r[label], 1e-12));
    }
    double e = 0;
    for (int b = 0; b < BINS; b++) {
        if (count[b] > 0) e += fabs(right[b] - conf_sum[b]) / d->n;
        all->conf[b] += conf_sum[b], all->right[b] += right[b], all->count[b] += count[b];
    }
    *acc = good / d->n, *nll = ll / d->n, *ece = e;
}

int main(int argc, char **argv) {
    lab_args a;
    if (!lab_parse(argc, argv, "ch11_regularization", &a)) return 2;
    if (a.seeds > MAX_SEEDS) a.seeds = MAX_SEEDS;
    int n_train = a.quick ? 1000 : 10000, n_valid = a.quick ? 1000 : 5000, epochs = a.quick ? 8 : 20;
    int hidden[2] = {a.quick ? 100 : 300, 100}, mc_samples = a.quick ? 10 : 50;
    nb_dataset train[2], valid[2], test;
    for (int s = 0; s < 2; s++)
        if (!lab_load(&a, n_train, n_valid, 0, s == 1, &train[s], &valid[s], &test)) return lab_fail(&a, "data");

    static double tr_acc[N_REG][MAX_SEEDS], va_acc[N_REG][MAX_SEEDS], va_loss[N_REG][MAX_SEEDS];
    static double mc[2][3][MAX_SEEDS]; /* plain / MC: accuracy, NLL, ECE */
    static bins rel[2];                /* plain / MC, every seed's predictions pooled */
    float *logits = malloc(sizeof(float) * (size_t)n_valid * 10), *probs = malloc(sizeof(float) * (size_t)n_valid * 10);
    if (!logits || !probs) return 3;
    for (int k = 0; k < N_REG; k++)
        for (int s = 0; s < a.seeds; s++) {
            const nb_dataset *tr = &train[regs[k].standardize], *va = &valid[regs[k].standardize];
            nb_model *m = nb_model_new(1, (int[]){tr->dim}, 42 + (uint64_t)s);
            for (int i = 0; m && i < 2; i++) {
                nb_layer_spec d = nb_dense_spec(hidden[i], regs[k].activation, regs[k].init);
                d.kernel_reg = (nb_regularizer){regs[k].l1, regs[k].l2};
                d.max_norm = regs[k].max_norm;
                nb_model_add(m, &d);
                if (regs[k].dropout > 0) nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DROPOUT, .rate = regs[k].dropout});
                if (regs[k].alpha_dropout > 0)
                    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_ALPHA_DROPOUT, .rate = regs[k].alpha_dropout});
            }
            nb_layer_spec out = nb_dense_spec(10, NULL, NULL);
            if (!m || !nb_model_add(m, &out)) return lab_fail(&a, "model");
            nb_fit_opts o = nb_fit_defaults();
            o.epochs = epochs, o.seed = 42 + (uint64_t)s, o.verbose = 0;
            o.optimizer = nb_optimizer_defaults(NB_NADAM);
            if (nb_fit(m, tr, &o, NULL) != NB_OK) return lab_fail(&a, regs[k].name);
            if (nb_evaluate(m, tr, 256, NULL, &tr_acc[k][s]) != NB_OK ||
                nb_evaluate(m, va, 256, &va_loss[k][s], &va_acc[k][s]) != NB_OK)
                return lab_fail(&a, "evaluate");
            if (k == 3) { /* MC dropout on the dropout net */
                if (nb_predict(m, va, 256, logits) != NB_OK) return lab_fail(&a, "predict");
                for (int i = 0; i < va->n; i++) { /* softmax of the logits */
                    float *r = logits + (size_t)i * 10, mx = r[0];
                    for (int c = 1; c < 10; c++) mx = fmaxf(mx, r[c]);
                    double z = 0;
                    for (int c = 0; c < 10; c++) z += exp(r[c] - mx);
                    for (int c = 0; c < 10; c++) r[c] = (float)(exp(r[c] - mx) / z);
                }
                scores(logits, va, &mc[0][0][s], &mc[0][1][s], &mc[0][2][s], &rel[0]);
                double acc_mc;
                if (nb_predict_mc(m, va, 256, mc_samples, 7 + (uint64_t)s, probs, NULL, &acc_mc) != NB_OK)
                    return lab_fail(&a, "MC dropout");
                scores(probs, va, &mc[1][0][s], &mc[1][1][s], &mc[1][2][s], &rel[1]);
            }
            fprintf(stderr, "%s seed %d: train %.4f val %.4f\n", regs[k].name, s, tr_acc[k][s], va_acc[k][s]);
            nb_model_free(m);
        }

    lab_md md;
    if (!lab_md_open(&md, &a, "Regularization")) return 3;
    lab_md_printf(&md,
                  "Dense %d-%d + Dense(10), %d training images (to overfit), %d validation images, Nadam at "
                  "lr 0.001, batch 32, %d epochs, seeds 42..%d. Penalties and max-norm on every hidden kernel; "
                  "(alpha) dropout after every hidden layer. Accuracies in inference mode (no dropout); the gap "
                  "is training minus validation accuracy. The validation loss is nb_evaluate's, which includes the "
                  "l1/l2 penalty, as Keras's does.\n\n",
                  hidden[0], hidden[1], n_train, n_valid, epochs, 41 + a.seeds);
    const char *cols[] = {"regularization", "training acc.", "validation acc.", "gap", "validation loss"};
    lab_md_header(&md, 5, cols);
    static double gap[N_REG][MAX_SEEDS];
    for (int k = 0; k < N_REG; k++) {
        for (int s = 0; s < a.seeds; s++) gap[k][s] = tr_acc[k][s] - va_acc[k][s];
        char b[4][64];
        lab_md_printf(&md, "| %s | %s | %s | %s | %s |\n", regs[k].name, lab_pm(b[0], 64, tr_acc[k], a.seeds, 4),
                      lab_pm(b[1], 64, va_acc[k], a.seeds, 4), lab_pm(b[2], 64, gap[k], a.seeds, 4),
                      lab_pm(b[3], 64, va_loss[k], a.seeds, 4));
    }
    lab_md_printf(&md,
                  "\n### MC dropout\n\nThe dropout-0.2 net above on the validation images: its plain (inference) "
                  "prediction against the mean of %d stochastic passes with dropout on (nb_predict_mc). ECE: "
                  "expected calibration error over %d equal-width confidence bins.\n\n",
                  mc_samples, BINS);
    const char *cols2[] = {"prediction", "accuracy", "NLL", "ECE"};
    lab_md_header(&md, 4, cols2);
    for (int v = 0; v < 2; v++) {
        char b[3][64];
        lab_md_printf(&md, "| %s | %s | %s | %s |\n", v ? "MC dropout" : "plain", lab_pm(b[0], 64, mc[v][0], a.seeds, 4),
                      lab_pm(b[1], 64, mc[v][1], a.seeds, 4), lab_pm(b[2], 64, mc[v][2], a.seeds, 4));
    }
    lab_md_printf(&md, "\n");
    /* the reliability diagram: accuracy against confidence per bin */
    static double rx[2][BINS], ry[2][BINS];
    int rn[2] = {0, 0};
    for (int v = 0; v < 2; v++)
        for (int b = 0; b < BINS; b++)
            if (rel[v].count[b] >= 20) /* fewer would be noise */
                rx[v][rn[v]] = rel[v].conf[b] / rel[v].count[b], ry[v][rn[v]++] = rel[v].right[b] / rel[v].count[b];
    static const double diag[2] = {0, 1};
    lab_curve rc[3] = {{"perfect calibration", 2, diag, diag}, {"plain", rn[0], rx[0], ry[0]},
                       {"MC dropout", rn[1], rx[1], ry[1]}};
    lab_fig fr = {"reliability diagram: accuracy against confidence (15 bins, seeds pooled)", "confidence",
                  "accuracy", .style = "linespoints", .key = "top left", .ymin = 0, .ymax = 1};
    lab_md_figure(&md, &a, "ch11_regularization_reliability.png",
                  lab_plot(&a, "ch11_regularization_reliability.png", &fr, 3, rc),
                  "reliability diagram of the dropout net, plain against MC dropout (bins of 20 or more predictions)");
    /* figure: training vs validation accuracy per regularizer (bars as points) */
    double x[N_REG], ytr[N_REG], yva[N_REG];
    for (int k = 0; k < N_REG; k++) {
        x[k] = k + 1;
        lab_mean_std(tr_acc[k], a.seeds, &ytr[k], NULL);
        lab_mean_std(va_acc[k], a.seeds, &yva[k], NULL);
    }
    lab_curve c[2] = {{"training", N_REG, x, ytr}, {"validation", N_REG, x, yva}};
    lab_fig f = {"accuracy by regularizer: 1 none, 2 l1, 3 l2, 4 dropout, 5 max-norm, 6 SELU, 7 alpha dropout",
                 "regularizer", "accuracy", .style = "points", .key = "outside"};
    lab_md_figure(&md, &a, "ch11_regularization_gap.png", lab_plot(&a, "ch11_regularization_gap.png", &f, 2, c),
                  "training and validation accuracy per regularizer");

    bool ok = true;
    for (int s = 0; s < a.seeds; s++) {
        ok = ok && gap[2][s] < gap[0][s] && gap[3][s] < gap[0][s];
        ok = ok && mc[1][0][s] > mc[0][0][s] - 0.01 && mc[1][2][s] < mc[0][2][s];
    }
    lab_md_printf(&md,
                  "Claims checked, every seed: l2 and dropout each leave a smaller training-validation gap than no "
                  "regularization; MC dropout's accuracy is within 0.01 of the plain prediction's or better, and its ECE is "
                  "lower: **%s**\n",
                  ok ? "holds" : "FAILS");
    if (!lab_md_close(&md)) return 3;
    free(logits), free(probs);
    for (int s = 0; s < 2; s++) nb_dataset_free(&train[s]), nb_dataset_free(&valid[s]);
    return ok ? 0 : 1;
}
