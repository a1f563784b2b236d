/* examples/ch11_activations.c — the chapter's activation functions, as
 * nabla computes them, and its ranking on one deep net.
 *
 * Part 1: each activation's curve and derivative over x in [-5, 5], from a
 * graph: x is a trainable parameter, y = act(x), loss = sum(y), so one
 * backward pass leaves dy/dx in x's gradient. RReLU is drawn in inference
 * (its slope is then the mean of [1/8, 1/3]); PReLU with slopes 0.25.
 * Part 2: the same 10-layer net of 100 units (He init for the ReLU family,
 * ELU, GELU and Swish; Glorot for sigmoid and tanh; LeCun and standardized
 * inputs for SELU) trained by nb_fit with each activation: validation
 * accuracy after a few epochs, mean ± std over seeds.
 *
 *   ch11_activations [--quick] [--data DIR] [--seeds N] OUTDIR
 *
 * Claims checked: (1) the curves: the derivative from the backward pass
 * matches a finite difference of the forward values; ReLU's slope is 0 left
 * of 0 and a leaky ReLU's is its alpha; ELU and SELU saturate at -1 and
 * -1.758 for large negative inputs; GELU and Swish dip below 0 (minima near
 * -0.17 and -0.28). (2) the ranking, every seed: the best non-saturating
 * activation beats sigmoid by over 0.1 accuracy on the 10-layer net. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

#define NX 1001
#define N_ACT 11
#define MAX_SEEDS 16
#define MAX_EPOCHS 64

typedef struct act {
    const char *name, *layer_name, *init;
    float alpha;
    bool standardize;
} act;

static const act acts[N_ACT] = {
    {"sigmoid", "sigmoid", "glorot_uniform", 0, false},
    {"tanh", "tanh", "glorot_uniform", 0, false},
    {"relu", "relu", "he_normal", 0, false},
    {"leaky_relu(0.01)", "leaky_relu", "he_normal", 0.01f, false},
    {"leaky_relu(0.2)", "leaky_relu", "he_normal", 0.2f, false},
    {"prelu", "prelu", "he_normal", 0, false},
    {"rrelu", "rrelu", "he_normal", 0, false},
    {"elu", "elu", "he_normal", 0, false},
    {"selu", "selu", "lecun_normal", 0, true},
    {"gelu", "gelu", "he_normal", 0, false},
    {"swish", "swish", "he_normal", 0, false},
};

/* y and dy/dx of activation k over xs, through nabla's ops */
static bool curve(int k, const double *xs, double *y, double *dy) {
    nb_tensor *x = nb_tensor_new(2, (int[]){NX, 1}), *alpha = nb_tensor_new(1, (int[]){1});
    nb_graph *g = nb_graph_new();
    if (!x || !alpha || !g) return false;
    for (int i = 0; i < NX; i++) x->data[i] = (float)xs[i];
    alpha->data[0] = 0.25f;
    nb_node *xn = nb_param(g, x), *o = NULL;
    switch (k) {
    case 0: o = nb_sigmoid(g, xn); break;
    case 1: o = nb_tanh(g, xn); break;
    case 2: o = nb_relu(g, xn); break;
    case 3: o = nb_leaky_relu(g, xn, 0.01f); break;
    case 4: o = nb_leaky_relu(g, xn, 0.2f); break;
    case 5: o = nb_prelu(g, xn, nb_constant(g, alpha)); break;
    case 6: o = nb_rrelu(g, xn, 1.0f / 8, 1.0f / 3); break;
    case 7: o = nb_elu(g, xn, 1.0f); break;
    case 8: o = nb_selu(g, xn); break;
    case 9: o = nb_gelu(g, xn); break;
    case 10: o = nb_swish(g, xn); break;
    }
    nb_node *loss = nb_sum(g, o);
    nb_forward(g, NB_INFERENCE);
    nb_backward(g, loss);
    bool ok = nb_graph_status(g) == NB_OK;
    if (!ok) fprintf(stderr, "ch11_activations: %s: %s\n", acts[k].name, nb_graph_error(g));
    for (int i = 0; ok && i < NX; i++) y[i] = nb_node_value(o)[i], dy[i] = x->grad[i];
    nb_graph_free(g), nb_tensor_free(x), nb_tensor_free(alpha);
    return ok;
}

static double at(const double *xs, const double *v, double x) {
    int i = (int)lround((x - xs[0]) / (xs[1] - xs[0]));
    return v[i < 0 ? 0 : i >= NX ? NX - 1 : i];
}

int main(int argc, char **argv) {
    lab_args a;
    if (!lab_parse(argc, argv, "ch11_activations", &a)) return 2;
    if (a.seeds > MAX_SEEDS) a.seeds = MAX_SEEDS;
    lab_md md;
    if (!lab_md_open(&md, &a, "Activation functions")) return 3;

    /* ---- part 1: curves ---- */
    static double xs[NX], y[N_ACT][NX], dy[N_ACT][NX];
    for (int i = 0; i < NX; i++) xs[i] = -5 + 10.0 * i / (NX - 1);
    for (int k = 0; k < N_ACT; k++)
        if (!curve(k, xs, y[k], dy[k])) return 3;
    bool ok1 = true;
    lab_md_printf(&md, "Computed by nabla's ops on 1001 points of [-5, 5] (forward for the value, backward of the "
                       "sum for the derivative); PReLU with slopes 0.25, RReLU in inference.\n\n");
    const char *cols1[] = {"activation", "f(-5)", "f(-1)", "f(0)", "f(1)", "min f", "f'(-3)", "f'(0)", "f'(3)",
                           "max |f' − finite diff.|"};
    lab_md_header(&md, 10, cols1);
    double lowest[N_ACT];
    for (int k = 0; k < N_ACT; k++) {
        double worst = 0, lo = INFINITY;
        for (int i = 1; i + 1 < NX; i++) {
            if (fabs(xs[i]) < 0.02) continue; /* kinks at 0 */
            double fd = (y[k][i + 1] - y[k][i - 1]) / (xs[i + 1] - xs[i - 1]);
            if (fabs(fd - dy[k][i]) > worst) worst = fabs(fd - dy[k][i]);
        }
        for (int i = 0; i < NX; i++) lo = fmin(lo, y[k][i]);
        lowest[k] = lo;
        ok1 = ok1 && worst < 2e-3;
        lab_md_printf(&md, "| %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.1e |\n", acts[k].name,
                      at(xs, y[k], -5), at(xs, y[k], -1), at(xs, y[k], 0), at(xs, y[k], 1), lo, at(xs, dy[k], -3),
                      at(xs, dy[k], 0), at(xs, dy[k], 3), worst);
    }
    ok1 = ok1 && at(xs, dy[2], -3) == 0 && fabs(at(xs, dy[3], -3) - 0.01) < 1e-6 &&
          fabs(at(xs, dy[4], -3) - 0.2) < 1e-6 && fabs(at(xs, dy[5], -3) - 0.25) < 1e-6;
    ok1 = ok1 && fabs(at(xs, y[7], -5) + 1) < 0.01 && fabs(at(xs, y[8], -5) + 1.7581) < 0.02; /* saturate */
    ok1 = ok1 && lowest[9] > -0.18 && lowest[9] < -0.16 && lowest[10] > -0.29 && lowest[10] < -0.27;  /* dips */
    lab_md_printf(&md, "\nClaim (backward matches finite differences within 2e-3 away from 0; ReLU's slope 0 and "
                       "leaky/PReLU's slope alpha left of 0; ELU → −1 and SELU → −1.758 at −5; GELU's minimum in "
                       "(−0.18, −0.16) and Swish's in (−0.29, −0.27)): **%s**\n\n",
                  ok1 ? "holds" : "FAILS");
    lab_curve cv[N_ACT], cd[N_ACT];
    for (int k = 0; k < N_ACT; k++)
        cv[k] = (lab_curve){acts[k].name, NX, xs, y[k]}, cd[k] = (lab_curve){acts[k].name, NX, xs, dy[k]};
    lab_fig fv = {"activation functions (nabla's ops)", "x", "f(x)", .key = "outside", .ymin = -2, .ymax = 3};
    lab_md_figure(&md, &a, "ch11_activations_curves.png", lab_plot(&a, "ch11_activations_curves.png", &fv, N_ACT, cv),
                  "activation functions");
    lab_fig fd = {"their derivatives (backward pass)", "x", "f'(x)", .key = "outside", .ymin = -0.2, .ymax = 1.9};
    lab_md_figure(&md, &a, "ch11_activations_derivatives.png",
                  lab_plot(&a, "ch11_activations_derivatives.png", &fd, N_ACT, cd), "their derivatives");

    /* ---- part 2: the ranking on one deep net ---- */
    int depth = a.quick ? 6 : 10, n_train = a.quick ? 1000 : 20000, n_valid = a.quick ? 500 : 5000;
    int epochs = a.quick ? 2 : 5;
    nb_dataset train[2], valid[2], test;
    for (int s = 0; s < 2; s++)
        if (!lab_load(&a, n_train, n_valid, 0, s == 1, &train[s], &valid[s], &test)) return lab_fail(&a, "data");
    static double acc[N_ACT][MAX_SEEDS], loss1[N_ACT][MAX_SEEDS], curves[N_ACT][MAX_EPOCHS];
    for (int k = 0; k < N_ACT; k++)
        for (int s = 0; s < a.seeds; s++) {
            int st = acts[k].standardize;
            lab_net_cfg nc = {.depth = depth, .width = 100, .activation = acts[k].layer_name, .init = acts[k].init,
                              .alpha = acts[k].alpha, .in_dim = train[st].dim, .classes = 10, .seed = 42 + (uint64_t)s};
            nb_model *m = lab_net(&nc, NULL, NULL);
            if (!m) return lab_fail(&a, "model");
            nb_fit_opts o = nb_fit_defaults();
            o.epochs = epochs, o.seed = 42 + (uint64_t)s, o.verbose = 0, o.validation = &valid[st];
            o.optimizer = nb_optimizer_defaults(NB_NESTEROV), o.optimizer.lr = 0.005f;
            nb_history h;
            if (nb_fit(m, &train[st], &o, &h) != NB_OK) return lab_fail(&a, acts[k].name);
            acc[k][s] = h.epochs[h.n_epochs - 1].val_accuracy, loss1[k][s] = h.epochs[0].loss;
            if (s == 0)
                for (int e = 0; e < h.n_epochs && e < MAX_EPOCHS; e++) curves[k][e] = h.epochs[e].val_accuracy;
            fprintf(stderr, "%s seed %d: %.4f\n", acts[k].name, s, acc[k][s]);
            nb_history_free(&h), nb_model_free(m);
        }
    lab_md_printf(&md,
                  "\n### Ranking on one net\n\n%d Dense layers of 100 + Dense(10), %d training images, %d validation "
                  "images, Nesterov momentum 0.9 at lr 0.005, batch 32, %d epochs, seeds 42..%d (nb_fit).\n\n",
                  depth, n_train, n_valid, epochs, 41 + a.seeds);
    const char *cols2[] = {"rank", "activation", "init", "training loss, epoch 1", "val. accuracy"};
    lab_md_header(&md, 5, cols2);
    int order[N_ACT];
    double mean[N_ACT];
    for (int k = 0; k < N_ACT; k++) order[k] = k, lab_mean_std(acc[k], a.seeds, &mean[k], NULL);
    for (int i = 0; i < N_ACT; i++)
        for (int j = i + 1; j < N_ACT; j++)
            if (mean[order[j]] > mean[order[i]]) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
    for (int i = 0; i < N_ACT; i++) {
        int k = order[i];
        char b1[64], b2[64];
        lab_md_printf(&md, "| %d | %s | %s | %s | %s |\n", i + 1, acts[k].name, acts[k].init,
                      lab_pm(b1, 64, loss1[k], a.seeds, 3), lab_pm(b2, 64, acc[k], a.seeds, 4));
    }
    double ep[MAX_EPOCHS];
    for (int e = 0; e < MAX_EPOCHS; e++) ep[e] = e + 1;
    lab_curve lc[N_ACT];
    for (int k = 0; k < N_ACT; k++) lc[k] = (lab_curve){acts[k].name, epochs, ep, curves[k]};
    lab_fig fl = {"validation accuracy per epoch (seed 42)", "epoch", "accuracy", .style = "linespoints",
                  .key = "outside"};
    lab_md_printf(&md, "\n");
    lab_md_figure(&md, &a, "ch11_activations_ranking.png",
                  lab_plot(&a, "ch11_activations_ranking.png", &fl, N_ACT, lc), "learning curves per activation");
    bool ok2 = true;
    for (int s = 0; s < a.seeds; s++) {
        double best = 0;
        for (int k = 2; k < N_ACT; k++) best = fmax(best, acc[k][s]);
        ok2 = ok2 && best > acc[0][s] + 0.1;
    }
    lab_md_printf(&md, "Claim (every seed: the best non-saturating activation beats sigmoid by over 0.1): **%s**\n",
                  ok2 ? "holds" : "FAILS");
    if (!lab_md_close(&md)) return 3;
    for (int s = 0; s < 2; s++) nb_dataset_free(&train[s]), nb_dataset_free(&valid[s]);
    return ok1 && ok2 ? 0 : 1;
}
