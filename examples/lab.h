/* examples/lab.h — what the chapter-11 lab programs (examples/ch11_*.c)
 * share, over nabla's public API only: the command line, Fashion-MNIST
 * splits, mean ± std over seeds, a markdown report and PNG figures drawn
 * by gnuplot.
 *
 * Every program is run as
 *   ch11_<topic> [--quick] [--data DIR] [--seeds N] OUTDIR
 * and writes OUTDIR/ch11_<topic>.md (its tables) and OUTDIR/ch11_<topic>_*.png.
 * --quick uses small data and nets, and the program checks its claim
 * loosely: the exit status is 1 if the claim fails, 2 on a usage error,
 * 3 on a library or file error. */
#ifndef LAB_H
#define LAB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nabla/nabla.h"

typedef struct lab_args {
    const char *prog; /* "ch11_vanishing" */
    const char *out;  /* the output folder (made if missing) */
    const char *data; /* NULL: nb_load_mnist_dir's default */
    bool quick;
    int seeds;        /* seeds to average over (>= 3 unless changed with --seeds) */
} lab_args;

/* Parses the command line above; prints the usage and returns false on a
 * mistake (exit with 2 then). Makes the output folder. */
bool lab_parse(int argc, char **argv, const char *prog, lab_args *a);
/* The same with another number of seeds when --seeds is not given (the
 * issue asks 5 for transfer learning). */
bool lab_parse_seeds(int argc, char **argv, const char *prog, int seeds, lab_args *a);

/* Prints "<prog>: <what>: <nb_last_error()>" and returns 3. */
int lab_fail(const lab_args *a, const char *what);

/* Fashion-MNIST from Debian's package (or --data / $NABLA_DATA), pixels
 * scaled to [0,1]: train = the first n_train of the 60,000 training
 * images, valid = the last n_valid of them (disjoint from train), test =
 * the first n_test of the 10,000 test images. n_valid or n_test may be 0
 * (that set is then left zeroed). With standardize, every split is
 * standardized with train's per-pixel mean and std (for SELU). */
bool lab_load(const lab_args *a, int n_train, int n_valid, int n_test, bool standardize, nb_dataset *train,
              nb_dataset *valid, nb_dataset *test);

/* Mean and sample standard deviation (n - 1; 0 for n < 2) of v[0..n). */
void lab_mean_std(const double *v, int n, double *mean, double *std);
/* "0.8712 ± 0.0043" with `digits` decimals, into buf; returns buf. */
const char *lab_pm(char *buf, size_t len, const double *v, int n, int digits);

/* The markdown report: lines go to the file and to stdout. */
typedef struct lab_md {
    FILE *f;
    bool ok;
} lab_md;
bool lab_md_open(lab_md *md, const lab_args *a, const char *title);
void lab_md_printf(lab_md *md, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A table header: "| a | b |" and its "|---|---|" line. */
void lab_md_header(lab_md *md, int n, const char *const *cols);
/* Links the figure (a file name in the output folder), or says why it is
 * missing. */
void lab_md_figure(lab_md *md, const lab_args *a, const char *file, int plot_status, const char *caption);
bool lab_md_close(lab_md *md);

/* ---- figures ---- */
typedef struct lab_curve {
    const char *title;
    int n;
    const double *x, *y; /* x NULL: 0, 1, ..., n-1 */
} lab_curve;

typedef struct lab_fig {
    const char *title, *xlabel, *ylabel;
    bool logx, logy;
    const char *style; /* gnuplot's "with": NULL = "lines" */
    const char *key;   /* "top right" (default), "bottom right", "outside", "off", ... */
    double ymin, ymax; /* the y range when ymin < ymax */
    double xtics;      /* the x axis's tic spacing when > 0 (else gnuplot's) */
} lab_fig;

enum { LAB_PLOT_OK = 0, LAB_PLOT_SKIPPED = 1, LAB_PLOT_FAILED = -1 };

/* Draws the curves on one panel into OUTDIR/file (a .png, 640x400) with
 * gnuplot run without a shell, the picture read from its standard output
 * (no file name enters the script). Non-finite values (and values <= 0 on
 * a log axis) are gaps. Returns LAB_PLOT_SKIPPED when gnuplot is not on
 * $PATH, LAB_PLOT_FAILED when it failed. */
int lab_plot(const lab_args *a, const char *file, const lab_fig *f, int n, const lab_curve *c);
/* rows x cols panels on one picture of width x height pixels. */
int lab_plot_panels(const lab_args *a, const char *file, int rows, int cols, int width, int height, const lab_fig *figs,
                    const int *n, const lab_curve *const *c);

/* ---- deep dense nets ---- */
typedef struct lab_net_cfg {
    int depth, width;       /* hidden Dense layers */
    const char *activation; /* as nb_dense_spec */
    const char *init;       /* a name nb_init_parse knows, or "random_normal": N(0,1) */
    float alpha;            /* leaky_relu/elu alpha (0 = default) */
    bool batch_norm;        /* Dense (no bias) -> BN -> activation */
    bool bn_after;          /* Dense+activation -> BN (with batch_norm) */
    bool input_bn;          /* BatchNormalization on the inputs, before the first block */
    float dropout;          /* Dropout after every hidden block (0 = none) */
    float alpha_dropout;    /* AlphaDropout after every hidden block */
    float l1, l2, max_norm; /* on every Dense kernel */
    int in_dim, classes;
    uint64_t seed;
} lab_net_cfg;

/* input [in_dim] -> depth x hidden block -> Dense(classes) logits. NULL
 * with nb_last_error() set on a bad config. block_out[i] (if given, depth
 * entries) gets the layer whose output is block i's output, and
 * block_dense[i] block i's Dense layer. */
nb_model *lab_net(const lab_net_cfg *c, nb_layer **block_out, nb_layer **block_dense);

/* A probe graph over the model's layers that keeps every hidden block's
 * output: x [batch, in_dim] and labels [batch] inputs, the loss, and
 * per block the output node. */
typedef struct lab_probe {
    nb_graph *g;
    nb_node *x, *y, *loss, **out;
    nb_tensor **kernel; /* each block's Dense kernel */
    int depth;
} lab_probe;
bool lab_probe_new(lab_probe *p, nb_model *m, int depth, nb_layer *const *block_out, nb_layer *const *block_dense,
                   int batch, int in_dim);
void lab_probe_free(lab_probe *p);
/* Runs forward (training mode) and backward on one batch. */
bool lab_probe_run(lab_probe *p, const float *x, const float *y, int batch);
/* Mean and (population) std of block i's output values, all units pooled. */
void lab_probe_stats(const lab_probe *p, int i, double *mean, double *std);
/* The L2 norm of t's gradient (NaN when it has none). */
double lab_grad_norm(const nb_tensor *t);

/* ---- reusing layers (transfer, pretraining) ---- */

/* A new Sequential model for inputs [in_dim] holding copies, with tensors
 * of their own, of src's first n layers (src is left unchanged), or NULL
 * with nb_last_error() set. */
nb_model *lab_reuse(const nb_model *src, int n, int in_dim, uint64_t seed);
/* Freezes (false) or unfreezes m's first n layers. */
void lab_set_trainable(nb_model *m, int n, bool trainable);
/* nb_fit (h NULL), appending each epoch's validation accuracy to
 * curve[*n..], at most cap entries in all. */
nb_status lab_fit(nb_model *m, const nb_dataset *train, const nb_fit_opts *o, double *curve, int *n, int cap);

/* The few-label classifier of ch11_pretraining and ch11_auxiliary: the
 * first n_reuse layers of a pretrained net, then Dense(10, softmax),
 * trained with Nadam (batch 32) for `epochs` epochs on the labeled
 * images. LAB_SCRATCH: the same layers (same configs) freshly
 * initialized, lr 0.001; LAB_FROZEN: the reused layers stay frozen, only
 * the head learns, at lr 0.01; LAB_FINETUNED: frozen for `frozen_epochs`
 * at lr 0.01, then all layers train at 0.001 for the rest. The head alone
 * gets 0.01 because the reused features are large (std about 2), and at
 * 0.001 it was still far from converged after 30 epochs (a head trained
 * alone on precomputed features, outside the model, gave the same
 * validation accuracy at every epoch: not an artefact of freezing). Gets
 * the test accuracy and the validation accuracy per epoch (curve: epochs
 * entries). */
enum { LAB_SCRATCH, LAB_FROZEN, LAB_FINETUNED, LAB_ARMS };
extern const char *const lab_arm_name[LAB_ARMS];
bool lab_few_labels(const nb_model *pre, int n_reuse, int arm, const nb_dataset *labeled, const nb_dataset *valid,
                    const nb_dataset *test, int epochs, int frozen_epochs, uint64_t seed, double *curve,
                    double *test_acc);

/* The few-label experiments' shared report: a table of each arm's test
 * accuracy (mean ± std over a->seeds) and its gain over scratch in points,
 * then the arms' validation curves (mean over seeds, `epochs` of them)
 * drawn into OUTDIR/file and linked. acc[k][s] and curve[k][s][e] are arm
 * k's at seed s and epoch e. */
#define LAB_FEW_SEEDS 16
#define LAB_FEW_EPOCHS 64
void lab_few_labels_report(lab_md *md, const lab_args *a, double acc[LAB_ARMS][LAB_FEW_SEEDS],
                           double curve[LAB_ARMS][LAB_FEW_SEEDS][LAB_FEW_EPOCHS], int epochs,
                           const char *title, const char *file);

#endif
