/* examples/ch11_vanishing.c — the chapter's vanishing gradients: 20 Dense
 * layers of 100, sigmoid with N(0,1) weights (before Glorot & Bengio 2010)
 * against Glorot + tanh, He + ReLU, He + ELU and LeCun + SELU, each also
 * with batch normalization (Dense -> BN -> activation). Measures, per
 * hidden layer, the L2 norm of the kernel's gradient at step 0 and the mean
 * and std of the activations at initialization (and histograms of layers
 * 1, 5, 10, 15 and 20's activations, as in Glorot & Bengio's figures), the
 * ratio of the first
 * layer's gradient norm to the last's over the first epoch, and the
 * validation accuracy after a few epochs (mean ± std over seeds).
 *
 *   ch11_vanishing [--quick] [--data DIR] [--seeds N] OUTDIR
 *
 * Claim checked (every mode, every seed): with sigmoid and N(0,1) weights
 * the deep units saturate (over 30% of layer 20's with |z| > 4), layer 1's
 * gradient is smaller than layer 20's, and the net learns far more slowly
 * (val. accuracy over 0.1 below the best of the four other plain nets); Glorot + tanh saturates under 5%; He + ReLU has a
 * gradient ratio over 3x sigmoid's, deep activations with std > 0.05, and
 * learns (accuracy > 0.2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

#define DEPTH 20
#define WIDTH 100
#define MAX_CFG 10
#define MAX_SEEDS 16
#define MAX_TRACE 4096
#define N_HIST 5  /* layers with a histogram */
#define BINS 50

static const int hist_layer[N_HIST] = {1, 5, 10, 15, 20};

typedef struct cfg {
    const char *name, *activation, *init;
    bool bn, standardize;
} cfg;

static const cfg configs[MAX_CFG] = {
    {"sigmoid, N(0,1)", "sigmoid", "random_normal", false, false},
    {"tanh, Glorot", "tanh", "glorot_uniform", false, false},
    {"ReLU, He", "relu", "he_normal", false, false},
    {"ELU, He", "elu", "he_normal", false, false},
    {"SELU, LeCun", "selu", "lecun_normal", false, true},
    {"sigmoid, N(0,1), BN", "sigmoid", "random_normal", true, false},
    {"tanh, Glorot, BN", "tanh", "glorot_uniform", true, false},
    {"ReLU, He, BN", "relu", "he_normal", true, false},
    {"ELU, He, BN", "elu", "he_normal", true, false},
    {"SELU, LeCun, BN", "selu", "lecun_normal", true, true},
};

typedef struct result {
    double grad[DEPTH], mean[DEPTH], std[DEPTH]; /* step 0 */
    double delta[DEPTH];                         /* ||dL/dh|| of each block's output, step 0 */
    double sat[DEPTH];                           /* fraction of saturated units (|z| > 4), sigmoid/tanh */
    double ratio0, ratio_epoch, acc;
    double trace_x[MAX_TRACE], trace[MAX_TRACE]; /* ratio during epoch 1 */
    int n_trace;
    double hist_x[BINS], hist[N_HIST][BINS]; /* bin centres; each layer's share of its values per bin */
} result;

static int by_value(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Histograms of hist_layer's activations at initialization over one range
 * for the configuration: the activation's own range for sigmoid and tanh,
 * else the 0.1% to 99.9% quantiles of the five layers' values pooled (the
 * rest fall outside and are not counted). */
static bool histograms(const lab_probe *p, const cfg *c, result *r) {
    const size_t n = nb_node_size(p->out[0]), all_n = N_HIST * n;
    float *all = malloc(all_n * sizeof *all);
    if (!all) return false;
    for (int h = 0; h < N_HIST; h++) memcpy(all + h * n, nb_node_value(p->out[hist_layer[h] - 1]), n * sizeof *all);
    qsort(all, all_n, sizeof *all, by_value);
    double lo = all[(size_t)(0.001 * (double)(all_n - 1))], hi = all[(size_t)(0.999 * (double)(all_n - 1))];
    free(all);
    if (!strcmp(c->activation, "sigmoid")) lo = 0, hi = 1;
    if (!strcmp(c->activation, "tanh")) lo = -1, hi = 1;
    if (!(hi > lo)) hi = lo + 1;
    const double w = (hi - lo) / BINS;
    for (int b = 0; b < BINS; b++) r->hist_x[b] = lo + (b + 0.5) * w;
    for (int h = 0; h < N_HIST; h++) {
        const float *v = nb_node_value(p->out[hist_layer[h] - 1]);
        for (int b = 0; b < BINS; b++) r->hist[h][b] = 0;
        for (size_t k = 0; k < n; k++) {
            int b = (int)floor((v[k] - lo) / w);
            if (b == BINS && v[k] <= hi) b = BINS - 1; /* the range's top edge */
            if (b >= 0 && b < BINS) r->hist[h][b] += 1.0 / (double)n;
        }
    }
    return true;
}

static int run(const lab_args *a, const cfg *c, uint64_t seed, const nb_dataset *train, const nb_dataset *valid,
               int epochs, result *r) {
    nb_layer *out[DEPTH], *dense[DEPTH];
    lab_net_cfg nc = {.depth = DEPTH, .width = WIDTH, .activation = c->activation, .init = c->init, .batch_norm = c->bn,
                      .in_dim = train->dim, .classes = 10, .seed = seed};
    nb_model *m = lab_net(&nc, out, dense);
    if (!m) return lab_fail(a, "model");
    int probe_n = a->quick ? 256 : 512, batch = 32;
    lab_probe big, step;
    if (!lab_probe_new(&big, m, DEPTH, out, dense, probe_n, train->dim) ||
        !lab_probe_new(&step, m, DEPTH, out, dense, batch, train->dim))
        return lab_fail(a, "probe graph");
    /* step 0: one pass over the first probe_n images */
    if (!lab_probe_run(&big, train->x, train->y, probe_n)) return 3;
    for (int i = 0; i < DEPTH; i++) {
        r->grad[i] = lab_grad_norm(big.kernel[i]);
        lab_probe_stats(&big, i, &r->mean[i], &r->std[i]);
        const float *d = nb_node_grad(big.out[i]), *v = nb_node_value(big.out[i]);
        size_t n = nb_node_size(big.out[i]), k_sat = 0;
        double q = 0;
        for (size_t k = 0; d && k < n; k++) q += (double)d[k] * d[k];
        r->delta[i] = d ? sqrt(q) : NAN;
        /* |z| > 4: sigmoid(z) outside [0.018, 0.982], tanh(z) outside [-0.99933, 0.99933] */
        bool sig = !strcmp(c->activation, "sigmoid"), th = !strcmp(c->activation, "tanh");
        for (size_t k = 0; k < n; k++)
            k_sat += sig ? fabsf(v[k] - 0.5f) > 0.482014f : th ? fabsf(v[k]) > 0.999329f : 0;
        r->sat[i] = sig || th ? (double)k_sat / (double)n : NAN;
    }
    r->ratio0 = r->grad[0] / r->grad[DEPTH - 1];
    if (!histograms(&big, c, r)) return lab_fail(a, "histograms");

    /* training: Nesterov momentum, the same for every configuration */
    nb_tensor *const *params;
    int np = nb_model_tensors(m, &params);
    nb_optimizer_config oc = nb_optimizer_defaults(NB_NESTEROV);
    oc.lr = 0.005f;
    nb_optimizer *opt = nb_optimizer_new(&oc, np, params);
    nb_batches *it = nb_batches_new(train, batch, true, seed);
    if (!opt || !it) return lab_fail(a, "optimizer");
    nb_graph_set_seed(step.g, seed);
    double log_sum = 0;
    int n_log = 0, steps = 0, n_win = 0;
    double win = 0;
    r->n_trace = 0;
    for (int e = 0; e < epochs; e++) {
        const float *x, *y;
        int n;
        while ((n = nb_batches_next(it, &x, &y)) > 0) {
            if (!lab_probe_run(&step, x, y, n)) return 3;
            if (e == 0) {
                double q = lab_grad_norm(step.kernel[0]) / lab_grad_norm(step.kernel[DEPTH - 1]);
                if (isfinite(q) && q > 0) log_sum += log(q), n_log++, win += log(q), n_win++;
                if ((steps + 1) % 20 == 0 && r->n_trace < MAX_TRACE) { /* geometric mean of 20 steps */
                    r->trace_x[r->n_trace] = steps + 1, r->trace[r->n_trace++] = n_win ? exp(win / n_win) : NAN;
                    win = 0, n_win = 0;
                }
            }
            nb_optimizer_step(opt);
            steps++;
        }
    }
    r->ratio_epoch = n_log ? exp(log_sum / n_log) : NAN; /* geometric mean over epoch 1 */
    if (nb_evaluate(m, valid, 256, NULL, &r->acc) != NB_OK) return lab_fail(a, "evaluate");
    nb_batches_free(it), nb_optimizer_free(opt);
    lab_probe_free(&big), lab_probe_free(&step);
    nb_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    lab_args a;
    if (!lab_parse(argc, argv, "ch11_vanishing", &a)) return 2;
    if (a.seeds > MAX_SEEDS) a.seeds = MAX_SEEDS;
    int n_train = a.quick ? 1000 : 20000, n_valid = a.quick ? 500 : 5000, epochs = a.quick ? 1 : 5;
    int n_cfg = a.quick ? 5 : MAX_CFG;
    nb_dataset train[2], valid[2], test;
    for (int s = 0; s < 2; s++)
        if (!lab_load(&a, n_train, n_valid, 0, s == 1, &train[s], &valid[s], &test)) return lab_fail(&a, "data");

    static result res[MAX_CFG][MAX_SEEDS];
    for (int c = 0; c < n_cfg; c++)
        for (int s = 0; s < a.seeds; s++) {
            int st = configs[c].standardize;
            int rc = run(&a, &configs[c], 42 + (uint64_t)s, &train[st], &valid[st], epochs, &res[c][s]);
            if (rc) return rc;
            fprintf(stderr, "%s seed %d: ratio %.3g, acc %.4f\n", configs[c].name, s, res[c][s].ratio0, res[c][s].acc);
        }

    lab_md md;
    if (!lab_md_open(&md, &a, "Vanishing gradients: 20 Dense layers of 100")) return 3;
    lab_md_printf(&md,
                  "%d training images (pixels in [0,1]; standardized for SELU), %d validation images, batch 32, "
                  "Nesterov momentum 0.9 at lr 0.005, %d epoch(s), seeds 42..%d. Gradient norms are the L2 norms of "
                  "each hidden Dense kernel's gradient on one batch of %d images before any update; the ratio is "
                  "layer 1's over layer 20's (during epoch 1: the geometric mean over its steps).\n\n",
                  n_train, n_valid, epochs, 41 + a.seeds, a.quick ? 256 : 512);
    const char *cols[] = {"activation, init",     "‖∇W₁‖/‖∇W₂₀‖, step 0", "‖∂L/∂h₁‖/‖∂L/∂h₂₀‖, step 0",
                          "‖∇W₁‖/‖∇W₂₀‖, epoch 1", "act. std, layer 1",   "act. std, layer 20",
                          "saturated, layer 20",   "val. accuracy"};
    lab_md_header(&md, 8, cols);
    for (int c = 0; c < n_cfg; c++) {
        double v[7][MAX_SEEDS];
        for (int s = 0; s < a.seeds; s++) {
            const result *r = &res[c][s];
            v[0][s] = r->ratio0, v[1][s] = r->delta[0] / r->delta[DEPTH - 1], v[2][s] = r->ratio_epoch;
            v[3][s] = r->std[0], v[4][s] = r->std[DEPTH - 1], v[5][s] = r->sat[DEPTH - 1], v[6][s] = r->acc;
        }
        char b[7][64];
        lab_md_printf(&md, "| %s ", configs[c].name);
        for (int k = 0; k < 7; k++)
            if (k == 5 && isnan(v[5][0])) lab_md_printf(&md, "| – ");
            else lab_md_printf(&md, "| %s ", lab_pm(b[k], 64, v[k], a.seeds, k == 6 ? 4 : 3));
        lab_md_printf(&md, "|\n");
    }
    lab_md_printf(&md, "\nPer layer at step 0 (seed 42): kernel gradient norm / activation mean / activation std\n\n");
    const char *cols2[] = {"layer", "sigmoid N(0,1)", "tanh Glorot", "ReLU He", "ELU He", "SELU LeCun"};
    lab_md_header(&md, 6, cols2);
    for (int i = 0; i < DEPTH; i++) {
        lab_md_printf(&md, "| %d ", i + 1);
        for (int c = 0; c < 5; c++)
            lab_md_printf(&md, "| %.2g / %.2f / %.2f ", res[c][0].grad[i], res[c][0].mean[i], res[c][0].std[i]);
        lab_md_printf(&md, "|\n");
    }
    lab_md_printf(&md, "\n");

    /* figures, seed 42 */
    double layer[DEPTH];
    for (int i = 0; i < DEPTH; i++) layer[i] = i + 1;
    lab_curve g[MAX_CFG], sd[MAX_CFG], mn[MAX_CFG], tr[MAX_CFG], dl[MAX_CFG];
    for (int c = 0; c < n_cfg; c++) {
        g[c] = (lab_curve){configs[c].name, DEPTH, layer, res[c][0].grad};
        dl[c] = (lab_curve){configs[c].name, DEPTH, layer, res[c][0].delta};
        sd[c] = (lab_curve){configs[c].name, DEPTH, layer, res[c][0].std};
        mn[c] = (lab_curve){configs[c].name, DEPTH, layer, res[c][0].mean};
        tr[c] = (lab_curve){configs[c].name, res[c][0].n_trace, res[c][0].trace_x, res[c][0].trace};
    }
    lab_fig fg = {"kernel gradient norm per layer, step 0", "hidden layer", "||dL/dW||", .logy = true,
                  .style = "linespoints", .key = "outside"};
    lab_md_figure(&md, &a, "ch11_vanishing_grad.png", lab_plot(&a, "ch11_vanishing_grad.png", &fg, n_cfg, g),
                  "gradient norm per layer");
    lab_fig fd = {"backpropagated gradient per layer, step 0", "hidden layer", "||dL/dh||", .logy = true,
                  .style = "linespoints", .key = "outside"};
    lab_md_figure(&md, &a, "ch11_vanishing_delta.png", lab_plot(&a, "ch11_vanishing_delta.png", &fd, n_cfg, dl),
                  "gradient of the loss with respect to each layer's output");
    lab_fig fs = {"activation std per layer at initialization", "hidden layer", "std", .logy = true,
                  .style = "linespoints", .key = "outside"};
    lab_md_figure(&md, &a, "ch11_vanishing_act_std.png", lab_plot(&a, "ch11_vanishing_act_std.png", &fs, n_cfg, sd),
                  "activation std per layer");
    lab_fig fm = {"activation mean per layer at initialization", "hidden layer", "mean", .style = "linespoints",
                  .key = "outside"};
    lab_md_figure(&md, &a, "ch11_vanishing_act_mean.png",
                  lab_plot(&a, "ch11_vanishing_act_mean.png", &fm, n_cfg, mn), "activation mean per layer");
    /* Glorot & Bengio's picture: each configuration's activation histograms */
    static lab_fig fh[MAX_CFG];
    static lab_curve hc[MAX_CFG][N_HIST];
    static char hist_name[N_HIST][16];
    int hn[MAX_CFG];
    const lab_curve *hp[MAX_CFG];
    for (int h = 0; h < N_HIST; h++) snprintf(hist_name[h], sizeof hist_name[h], "layer %d", hist_layer[h]);
    for (int c = 0; c < n_cfg; c++) {
        fh[c] = (lab_fig){configs[c].name, "activation", "share of values", .logy = true, .ymin = 1e-4, .ymax = 1,
                          .key = c ? "off" : "top right", .xtics = res[c][0].hist_x[BINS - 1] - res[c][0].hist_x[0] < 3 ? 0.5 : 0};
        for (int h = 0; h < N_HIST; h++) hc[c][h] = (lab_curve){hist_name[h], BINS, res[c][0].hist_x, res[c][0].hist[h]};
        hn[c] = N_HIST, hp[c] = hc[c];
    }
    const int hrows = (n_cfg + 4) / 5;
    lab_md_figure(&md, &a, "ch11_vanishing_hist.png",
                  lab_plot_panels(&a, "ch11_vanishing_hist.png", hrows, 5, 1600, 330 * hrows, fh, hn, hp),
                  "activation histograms at initialization (seed 42; layers 1, 5, 10, 15, 20; share of a layer's "
                  "values per bin, log scale)");
    lab_fig ft = {"||dW1|| / ||dW20|| during epoch 1 (geometric mean of 20 steps)", "step", "ratio", .logy = true, .key = "outside"};
    lab_md_figure(&md, &a, "ch11_vanishing_ratio.png", lab_plot(&a, "ch11_vanishing_ratio.png", &ft, n_cfg, tr),
                  "gradient ratio during the first epoch");

    /* the claim, on every seed */
    bool ok = true;
    for (int s = 0; s < a.seeds; s++) {
        /* sigmoid N(0,1): most deep units saturated, the gradient shrinks
         * towards the input, and the net learns far more slowly */
        double best = fmax(fmax(res[1][s].acc, res[2][s].acc), fmax(res[3][s].acc, res[4][s].acc));
        ok = ok && res[0][s].sat[DEPTH - 1] > 0.3 && res[0][s].ratio0 < 1 && res[0][s].acc < best - 0.1;
        /* Glorot + tanh: few saturated units; He + ReLU: no shrinking
         * gradient, deep activations keep a spread, and it learns */
        ok = ok && res[1][s].sat[DEPTH - 1] < 0.05;
        ok = ok && res[2][s].ratio0 > 3 * res[0][s].ratio0 && res[2][s].std[DEPTH - 1] > 0.05 && res[2][s].acc > 0.2;
    }
    lab_md_printf(&md,
                  "Claim checked, every seed: with sigmoid and N(0,1) weights over 30%% of layer 20's units are "
                  "saturated (|z| > 4), layer 1's kernel gradient is smaller than layer 20's, and the validation "
                  "accuracy after the epochs is over 0.1 below the best of the four other (unnormalized) nets; with Glorot + tanh under 5%% are saturated; with He + ReLU "
                  "the gradient ratio is over 3 times sigmoid's, layer 20's activations keep std > 0.05 and the "
                  "accuracy is above 0.2: **%s**\n",
                  ok ? "holds" : "FAILS");
    if (!lab_md_close(&md)) return 3;
    for (int s = 0; s < 2; s++) nb_dataset_free(&train[s]), nb_dataset_free(&valid[s]);
    return ok ? 0 : 1;
}
