/* nabla — train, evaluate and inspect networks on Fashion-MNIST.
 *
 *   nabla train [--preset baseline|default|selu] [flags]   train, then test
 *   nabla eval --model FILE [--mc-samples N] [--json]       test a saved model
 *   nabla summary --model FILE                              its layers and sizes
 *   nabla lr-find [--preset ...] [--lr-min X] [--lr-max X]  the learning-rate range test
 *
 * Only the public API is used: this program composes the library. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nabla/nabla.h"
#include "nabla/train.h"
#ifdef NABLA_HAVE_DIST
#include "nabla/dist.h"

/* Under mpirun, the group of processes training together (NULL alone). */
static nb_dist *dist;
#endif

/* Whether this process speaks and writes files: the only one, or rank 0. */
static bool root_process(void) {
#ifdef NABLA_HAVE_DIST
    return nb_dist_rank(dist) == 0;
#else
    return true;
#endif
}

#define MAX_LAYERS 256

typedef struct config {
    const char *preset;
    int n_layers, layers[MAX_LAYERS];
    char activation[16], init[24];
    bool batch_norm, standardize, quiet, json;
    float dropout, alpha_dropout;
    nb_optimizer_kind optimizer;
    float lr, momentum, beta1, beta2, weight_decay;     /* < 0: the optimizer's default */
    nb_schedule_kind schedule;
    float clip_value, clip_norm, clip_global_norm, l1, l2, max_norm;
    int patience, epochs, batch_size, threads, train_size, mc_samples, diagnose_every;
    bool sync_batch_norm;
    uint64_t seed;
    const char *save, *history, *plot, *data, *resume, *diagnose;
    float lr_min, lr_max; /* lr-find */
    long steps;           /* lr-find: 0 = one epoch */
    const char *csv;      /* lr-find */
} config;

static void usage(FILE *out) {
    fprintf(out,
            "usage: nabla train [--preset baseline|default|selu] [options]\n"
            "       nabla eval --model FILE [--mc-samples N] [--data DIR] [--batch-size N] [--threads N]\n"
            "                  [--seed N] [--json]\n"
            "       nabla summary --model FILE\n"
            "       nabla lr-find [--preset baseline|default|selu] [--lr-min X] [--lr-max X] [--steps N]\n"
            "                     [--csv FILE] [--plot FILE.png|svg] [train's model and data options]\n"
            "\n"
            "train options (each overrides the preset):\n"
            "  --layers 300,100       hidden layer sizes; 100x20 means twenty layers of 100\n"
            "  --activation NAME      relu leaky_relu prelu rrelu elu selu gelu gelu_tanh swish tanh sigmoid\n"
            "  --init NAME            he_normal he_uniform glorot_normal glorot_uniform lecun_normal lecun_uniform\n"
            "  --batch-norm, --no-batch-norm\n"
            "  --dropout RATE, --alpha-dropout RATE   before each Dense layer\n"
            "  --optimizer NAME       sgd momentum nesterov adagrad rmsprop adam adamax nadam adamw\n"
            "  --lr X  --momentum X  --beta1 X  --beta2 X  --weight-decay X\n"
            "  --schedule NAME        constant power exponential piecewise performance 1cycle\n"
            "  --clip-value X  --clip-norm X  --clip-global-norm X\n"
            "  --l1 X  --l2 X  --max-norm X   kernel penalties and constraint of every Dense layer\n"
            "  --patience N           early stopping on val_loss, restoring the best weights (0: off)\n"
            "  --epochs N  --batch-size N  --threads N  --seed N\n"
            "  --train-size N         the first N of the 60,000 training images (110 or more;\n"
            "                         1/11 of them for validation)\n"
            "  --standardize          inputs to zero mean, unit variance (training statistics)\n"
            "  --mc-samples N         after training, also report MC-dropout test accuracy\n"
            "  --save FILE  --history FILE.csv  --plot FILE.png|svg  --data DIR  --quiet  --json\n"
            "  --resume FILE          back the training state up to FILE after every epoch, and if FILE\n"
            "                         exists, go on from it (the same bits as a run never stopped)\n"
            "  --diagnose FILE.csv    per-layer gradient health (activation mean and deviation,\n"
            "                         saturation, dead ReLUs, gradient norm, update ratio) at step 0\n"
            "                         and each epoch's first step, with warnings of vanishing and\n"
            "                         exploding gradients; with --plot F.png, also F.diagnostics.png\n"
            "  --diagnose-every N     every N steps instead\n"
            "  --sync-batch-norm      under mpirun: batch statistics of the whole global batch\n"
            "\n"
            "lr-find: trains a copy of the model with the rate growing exponentially from --lr-min\n"
            "to --lr-max, stops once the smoothed loss passes 4x its best, and suggests the rate at\n"
            "the smoothed loss's minimum / 10. It takes train's options except --lr, --epochs,\n"
            "--schedule, --patience, --save, --history, --resume, --diagnose, --mc-samples, --json.\n"
            "  --lr-min X  --lr-max X the range (1e-5 and 10)\n"
            "  --steps N              steps of the test (2 or more; default: one epoch)\n"
            "  --csv FILE             step,lr,loss,smoothed per step\n"
            "  --plot FILE.png|svg    the loss against the rate, log x axis\n");
}

static int fail(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "nabla: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 2;
}

/* ---- parsing numbers and lists ---- */

/* Decimal digits, a sign, a point and an exponent only: strtod would also
 * take leading spaces, hexadecimal ("0x10"), "inf" and "nan". */
static bool plain_number(const char *s) {
    if (!*s) return false;
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p)) return false;
    return true;
}

static bool parse_float(const char *s, float lo, float hi, float *out) {
    char *end;
    if (!plain_number(s)) return false;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi) return false;
    *out = (float)v;
    return true;
}

static bool parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    if (!plain_number(s) || strpbrk(s, ".eE")) return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* "300,100" or "100x20" or a mix: "300,100x3" */
static bool parse_layers(const char *s, config *c) {
    c->n_layers = 0;
    char buf[4096];
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof buf || s[0] == ',' || s[len - 1] == ',' || strstr(s, ",,")) return false;
    memcpy(buf, s, len + 1);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long units, times = 1;
        char *x = strchr(tok, 'x');
        if (x) *x = '\0';
        if (!parse_int(tok, 1, 100000, &units) || (x && !parse_int(x + 1, 1, MAX_LAYERS, &times))) return false;
        for (long i = 0; i < times; i++) {
            if (c->n_layers == MAX_LAYERS) return false;
            c->layers[c->n_layers++] = (int)units;
        }
    }
    return c->n_layers > 0;
}

static const char *const activations[] = {"relu", "leaky_relu", "prelu", "rrelu", "elu", "selu",
                                          "gelu", "gelu_tanh", "swish", "tanh", "sigmoid"};
static const char *const inits[] = {"he_normal", "he_uniform", "glorot_normal", "glorot_uniform",
                                    "lecun_normal", "lecun_uniform"};

static bool one_of(const char *s, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return true;
    return false;
}

/* ---- presets ---- */

static bool apply_preset(config *c, const char *name) {
    config d = {.preset = name, .lr = -1, .momentum = -1, .beta1 = -1, .beta2 = -1, .weight_decay = -1,
                .epochs = 10, .batch_size = 32, .seed = 42, .threads = 0, .lr_min = 1e-5f, .lr_max = 10};
    if (strcmp(name, "baseline") == 0) {
        /* 784-300-100-10, ReLU, He init, SGD lr 0.01, batch 32 */
        d.n_layers = 2, d.layers[0] = 300, d.layers[1] = 100;
        strcpy(d.activation, "relu"), strcpy(d.init, "he_normal");
        d.optimizer = NB_SGD, d.lr = 0.01f, d.schedule = NB_SCHEDULE_CONSTANT;
    } else if (strcmp(name, "default") == 0) {
        /* the chapter's default deep network: He init, ELU, batch norm,
         * early stopping, Nadam, 1cycle */
        d.n_layers = 3, d.layers[0] = 300, d.layers[1] = 100, d.layers[2] = 100;
        strcpy(d.activation, "elu"), strcpy(d.init, "he_normal");
        d.batch_norm = true, d.patience = 3;
        d.optimizer = NB_NADAM, d.lr = 0.002f, d.schedule = NB_SCHEDULE_ONECYCLE;
        d.epochs = 10;
    } else if (strcmp(name, "selu") == 0) {
        /* self-normalizing: LeCun normal, SELU, standardized inputs, no batch
         * norm; add --alpha-dropout RATE for regularization */
        d.n_layers = 1, d.layers[0] = 100;
        parse_layers("100x20", &d);
        strcpy(d.activation, "selu"), strcpy(d.init, "lecun_normal");
        d.standardize = true, d.optimizer = NB_NESTEROV, d.lr = 0.001f, d.momentum = 0.9f;
        d.schedule = NB_SCHEDULE_CONSTANT;
    } else {
        return false;
    }
    *c = d;
    return true;
}

/* The order of options[] below: an option's index is its code - O_PRESET. */
enum {
    O_PRESET = 256, O_LAYERS, O_ACTIVATION, O_INIT, O_BN, O_NO_BN, O_DROPOUT, O_ALPHA_DROPOUT, O_OPTIMIZER,
    O_LR, O_MOMENTUM, O_BETA1, O_BETA2, O_WD, O_SCHEDULE, O_CLIP_VALUE, O_CLIP_NORM, O_CLIP_GLOBAL, O_L1,
    O_L2, O_MAX_NORM, O_PATIENCE, O_EPOCHS, O_BATCH, O_THREADS, O_SEED, O_STANDARDIZE, O_SAVE, O_HISTORY,
    O_PLOT, O_QUIET, O_JSON, O_DATA, O_TRAIN_SIZE, O_MC, O_MODEL, O_HELP, O_RESUME, O_DIAGNOSE, O_DIAGNOSE_EVERY, O_SYNC_BN,
    O_LR_MIN, O_LR_MAX, O_STEPS, O_CSV
};

static const struct option options[] = {
    {"preset", required_argument, 0, O_PRESET}, {"layers", required_argument, 0, O_LAYERS},
    {"activation", required_argument, 0, O_ACTIVATION}, {"init", required_argument, 0, O_INIT},
    {"batch-norm", no_argument, 0, O_BN}, {"no-batch-norm", no_argument, 0, O_NO_BN},
    {"dropout", required_argument, 0, O_DROPOUT}, {"alpha-dropout", required_argument, 0, O_ALPHA_DROPOUT},
    {"optimizer", required_argument, 0, O_OPTIMIZER}, {"lr", required_argument, 0, O_LR},
    {"momentum", required_argument, 0, O_MOMENTUM}, {"beta1", required_argument, 0, O_BETA1},
    {"beta2", required_argument, 0, O_BETA2}, {"weight-decay", required_argument, 0, O_WD},
    {"schedule", required_argument, 0, O_SCHEDULE}, {"clip-value", required_argument, 0, O_CLIP_VALUE},
    {"clip-norm", required_argument, 0, O_CLIP_NORM}, {"clip-global-norm", required_argument, 0, O_CLIP_GLOBAL},
    {"l1", required_argument, 0, O_L1}, {"l2", required_argument, 0, O_L2},
    {"max-norm", required_argument, 0, O_MAX_NORM}, {"patience", required_argument, 0, O_PATIENCE},
    {"epochs", required_argument, 0, O_EPOCHS}, {"batch-size", required_argument, 0, O_BATCH},
    {"threads", required_argument, 0, O_THREADS}, {"seed", required_argument, 0, O_SEED},
    {"standardize", no_argument, 0, O_STANDARDIZE}, {"save", required_argument, 0, O_SAVE},
    {"history", required_argument, 0, O_HISTORY}, {"plot", required_argument, 0, O_PLOT},
    {"quiet", no_argument, 0, O_QUIET}, {"json", no_argument, 0, O_JSON}, {"data", required_argument, 0, O_DATA},
    {"train-size", required_argument, 0, O_TRAIN_SIZE}, {"mc-samples", required_argument, 0, O_MC},
    {"model", required_argument, 0, O_MODEL}, {"help", no_argument, 0, O_HELP},
    {"resume", required_argument, 0, O_RESUME}, {"diagnose", required_argument, 0, O_DIAGNOSE},
    {"diagnose-every", required_argument, 0, O_DIAGNOSE_EVERY}, {"sync-batch-norm", no_argument, 0, O_SYNC_BN},
    {"lr-min", required_argument, 0, O_LR_MIN}, {"lr-max", required_argument, 0, O_LR_MAX},
    {"steps", required_argument, 0, O_STEPS}, {"csv", required_argument, 0, O_CSV},
    {0, 0, 0, 0},
};

/* Applies one option; returns 0, or 2 after printing what is wrong. */
static int apply_option(config *c, int opt, const char *arg, const char **model) {
    long v;
    float f;
#define FLOAT(field, lo, hi)                                                                        \
    do {                                                                                            \
        if (!parse_float(arg, lo, hi, &f)) return fail("--%s: '%s' is not a number in range", options[opt - O_PRESET].name, arg); \
        c->field = f;                                                                               \
    } while (0)
#define INT(field, lo, hi)                                                                          \
    do {                                                                                            \
        if (!parse_int(arg, lo, hi, &v)) return fail("--%s: '%s' is not a whole number in range", options[opt - O_PRESET].name, arg); \
        c->field = (int)v;                                                                          \
    } while (0)
    switch (opt) {
    case O_PRESET: /* applied first, from its full spelling only */
        if (strcmp(arg, c->preset) != 0)
            return fail("--preset: give it once, spelled in full (got '%s', applied '%s')", arg, c->preset);
        break;
    case O_LAYERS:
        if (!parse_layers(arg, c)) return fail("--layers: '%s' is not a list like 300,100 or 100x20%s", arg, "");
        break;
    case O_ACTIVATION:
        if (!one_of(arg, activations, sizeof activations / sizeof *activations))
            return fail("--activation: unknown activation '%s'%s", arg, "");
        snprintf(c->activation, sizeof c->activation, "%s", arg);
        break;
    case O_INIT:
        /* the presets' names, or any the library knows ("random_normal(0,1)") */
        if (!one_of(arg, inits, sizeof inits / sizeof *inits) && (!nb_init_parse(arg, &(nb_init){0}) || strlen(arg) >= sizeof c->init))
            return fail("--init: unknown initializer '%s'%s", arg, "");
        snprintf(c->init, sizeof c->init, "%s", arg);
        break;
    case O_BN: c->batch_norm = true; break;
    case O_NO_BN: c->batch_norm = false; break;
    case O_DROPOUT: FLOAT(dropout, 0, 0.99f); break;
    case O_ALPHA_DROPOUT: FLOAT(alpha_dropout, 0, 0.99f); break;
    case O_OPTIMIZER:
        if (!nb_optimizer_parse(arg, &c->optimizer)) return fail("--optimizer: unknown optimizer '%s'%s", arg, "");
        break;
    case O_LR: FLOAT(lr, 1e-9f, 100); break;
    case O_MOMENTUM: FLOAT(momentum, 0, 0.9999f); break;
    case O_BETA1: FLOAT(beta1, 0, 0.9999f); break;
    case O_BETA2: FLOAT(beta2, 0, 0.999999f); break;
    case O_WD: FLOAT(weight_decay, 0, 10); break;
    case O_SCHEDULE:
        if (!nb_schedule_parse(arg, &c->schedule)) return fail("--schedule: unknown schedule '%s'%s", arg, "");
        break;
    case O_CLIP_VALUE: FLOAT(clip_value, 1e-9f, 1e9f); break;
    case O_CLIP_NORM: FLOAT(clip_norm, 1e-9f, 1e9f); break;
    case O_CLIP_GLOBAL: FLOAT(clip_global_norm, 1e-9f, 1e9f); break;
    case O_L1: FLOAT(l1, 0, 10); break;
    case O_L2: FLOAT(l2, 0, 10); break;
    case O_MAX_NORM: FLOAT(max_norm, 0, 1e9f); break;
    case O_PATIENCE: INT(patience, 0, 100000); break;
    case O_EPOCHS: INT(epochs, 1, 100000); break;
    case O_BATCH: INT(batch_size, 1, 65536); break;
    case O_THREADS: INT(threads, 1, 1024); break;
    case O_SEED:
        if (!parse_int(arg, 0, 0x7fffffffffffffffL, &v)) return fail("--seed: '%s' is not a whole number >= 0%s", arg, "");
        c->seed = (uint64_t)v;
        break;
    case O_STANDARDIZE: c->standardize = true; break;
    case O_SAVE: c->save = arg; break;
    case O_HISTORY: c->history = arg; break;
    case O_PLOT: c->plot = arg; break;
    case O_RESUME: c->resume = arg; break;
    case O_DIAGNOSE: c->diagnose = arg; break;
    case O_SYNC_BN: c->sync_batch_norm = true; break;
    case O_DIAGNOSE_EVERY: INT(diagnose_every, 1, 0x7fffffff); break;
    case O_QUIET: c->quiet = true; break;
    case O_JSON: c->json = true; break;
    case O_DATA:
        if (!*arg) return fail("--data: the folder name is empty (leave --data out for the default)%s%s", "", "");
        c->data = arg;
        break;
    case O_TRAIN_SIZE: INT(train_size, 110, 60000); break; /* 1/11 of it for validation */
    case O_MC: INT(mc_samples, 1, 100000); break;
    case O_MODEL: *model = arg; break;
    case O_LR_MIN: FLOAT(lr_min, 1e-12f, 1e6f); break;
    case O_LR_MAX: FLOAT(lr_max, 1e-12f, 1e6f); break;
    case O_STEPS:
        if (!parse_int(arg, 2, 100000000, &v)) return fail("--steps: '%s' is not a whole number of steps, 2 or more%s", arg, "");
        c->steps = v;
        break;
    case O_CSV: c->csv = arg; break;
    default: return 2;
    }
    return 0;
#undef FLOAT
#undef INT
}

/* ---- output files, checked before any training ---- */

/* The folder of path, into dir ("." for a bare name). */
static void folder_of(const char *path, char *dir, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, len, ".");
    else if (slash == path) snprintf(dir, len, "/");
    else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* Whether a and b name one file: the same inode when both exist, else the
 * same name in the same folder (resolved, links followed). */
static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char da[4096], db[4096], ra[PATH_MAX], rb[PATH_MAX];
    folder_of(a, da, sizeof da), folder_of(b, db, sizeof db);
    const char *na = strrchr(a, '/') ? strrchr(a, '/') + 1 : a, *nb = strrchr(b, '/') ? strrchr(b, '/') + 1 : b;
    return realpath(da, ra) && realpath(db, rb) && strcmp(ra, rb) == 0 && strcmp(na, nb) == 0;
}

/* --save, --history, --plot, --resume, --diagnose and --csv: distinct files, in folders that exist
 * and can be written, an empty name refused, a picture named .png or .svg; all before hours of
 * training. */
static int check_outputs(const config *c) {
    const char *names[6] = {c->save, c->history, c->plot, c->resume, c->diagnose, c->csv},
               *flags[6] = {"--save", "--history", "--plot", "--resume", "--diagnose", "--csv"};
    for (int i = 0; i < 6; i++) {
        if (!names[i]) continue;
        if (!*names[i]) return fail("%s: the file name is empty%s", flags[i], "");
        if (names[i] == c->plot) { /* gnuplot's terminal comes from the extension */
            const char *dot = strrchr(c->plot, '.');
            if (!dot || (strcmp(dot, ".png") && strcmp(dot, ".svg")))
                return fail("--plot: '%s' must end in .png or .svg%s", c->plot, "");
        }
        char dir[4096];
        struct stat st;
        folder_of(names[i], dir, sizeof dir);
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return fail("%s: the folder '%s' does not exist", flags[i], dir);
        if (access(dir, W_OK | X_OK) != 0) return fail("%s: the folder '%s' cannot be written to", flags[i], dir);
        for (int j = 0; j < i; j++)
            if (names[j] && same_file(names[i], names[j])) {
                fprintf(stderr, "nabla: %s and %s name the same file '%s': one would replace the other\n",
                        flags[j], flags[i], names[i]);
                return 2;
            }
    }
    return 0;
}

/* Options eval and summary take; train takes all but --model and lr-find's own; lr-find takes
 * train's that shape the model, the data and the optimizer, and its own. */
static bool allowed(const char *cmd, int opt) {
    bool lr_find_own = opt == O_LR_MIN || opt == O_LR_MAX || opt == O_STEPS || opt == O_CSV;
    if (!strcmp(cmd, "train")) return opt != O_MODEL && !lr_find_own;
    if (!strcmp(cmd, "lr-find"))
        return lr_find_own || !(opt == O_MODEL || opt == O_LR || opt == O_EPOCHS || opt == O_SCHEDULE ||
                                opt == O_PATIENCE || opt == O_SAVE || opt == O_HISTORY || opt == O_RESUME ||
                                opt == O_DIAGNOSE || opt == O_DIAGNOSE_EVERY || opt == O_MC || opt == O_JSON ||
                                opt == O_SYNC_BN);
    if (!strcmp(cmd, "summary")) return opt == O_MODEL || opt == O_HELP;
    return opt == O_MODEL || opt == O_MC || opt == O_DATA || opt == O_BATCH || opt == O_THREADS ||
           opt == O_SEED || opt == O_JSON || opt == O_HELP;
}

/* Parses argv (after the subcommand): the preset first, then every other
 * option over it, so that an explicit flag always wins whatever its place. */
static int parse_args(int argc, char **argv, config *c, const char **model, const char *cmd) {
    const char *preset = "baseline";
    opterr = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) preset = argv[i + 1];
        else if (strncmp(argv[i], "--preset=", 9) == 0) preset = argv[i] + 9;
    }
    if (!apply_preset(c, preset)) return fail("--preset: unknown preset '%s' (baseline, default, selu)%s", preset, "");
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == O_HELP) {
            usage(stdout);
            return 1;
        }
        if (opt == '?' || opt == ':') {
            fprintf(stderr, "nabla: bad or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        if (!allowed(cmd, opt)) {
            fprintf(stderr, "nabla %s: option '--%s' does not apply here\n", cmd, options[opt - O_PRESET].name);
            usage(stderr);
            return 2;
        }
        int rc = apply_option(c, opt, optarg, model);
        if (rc) return rc;
    }
    if (optind < argc) return fail("unexpected argument '%s'%s", argv[optind], "");
    if (check_outputs(c)) return 2;
    if (c->dropout > 0 && c->alpha_dropout > 0) return fail("--dropout and --alpha-dropout exclude each other%s%s", "", "");
    return 0;
}

/* ---- the model ---- */

static nb_model *build_model(const config *c, const nb_standardizer *st) {
    nb_model *m = nb_model_new(2, (int[]){28, 28}, c->seed);
    if (!m) return NULL;
    nb_layer_spec flat = {.kind = NB_LAYER_FLATTEN};
    bool ok = nb_model_add(m, &flat) != NULL;
    if (ok && st) {
        nb_layer_spec norm = {.kind = NB_LAYER_NORMALIZATION};
        nb_layer *l = nb_model_add(m, &norm);
        ok = l && nb_layer_set_normalization(l, st->mean, st->std) == NB_OK;
    }
    for (int i = 0; ok && i <= c->n_layers; i++) {
        bool output = i == c->n_layers;
        if (c->dropout > 0) {
            nb_layer_spec d = nb_dropout_spec(c->dropout);
            ok = nb_model_add(m, &d) != NULL;
        } else if (c->alpha_dropout > 0) {
            nb_layer_spec d = nb_alpha_dropout_spec(c->alpha_dropout);
            ok = nb_model_add(m, &d) != NULL;
        }
        bool bn = c->batch_norm && !output;
        nb_layer_spec dense = nb_dense_spec(output ? 10 : c->layers[i], output || bn ? NULL : c->activation, c->init);
        dense.no_bias = bn;
        dense.kernel_reg = (nb_regularizer){c->l1, c->l2};
        dense.max_norm = c->max_norm;
        ok = ok && nb_model_add(m, &dense) != NULL;
        if (ok && bn) {
            nb_layer_spec b = nb_batch_norm_spec(), a = nb_activation_spec(c->activation);
            ok = nb_model_add(m, &b) && nb_model_add(m, &a);
        }
    }
    if (!ok) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}

static nb_optimizer_config optimizer_config(const config *c) {
    nb_optimizer_config o = nb_optimizer_defaults(c->optimizer);
    if (c->lr > 0) o.lr = c->lr;
    if (c->momentum >= 0) o.momentum = c->momentum;
    if (c->beta1 >= 0) o.beta1 = c->beta1;
    if (c->beta2 >= 0) o.beta2 = c->beta2;
    if (c->weight_decay >= 0) o.weight_decay = c->weight_decay;
    o.clip_value = c->clip_value, o.clip_norm = c->clip_norm, o.clip_global_norm = c->clip_global_norm;
    return o;
}

/* Schedules over epochs where their parameters are counted in epochs
 * (power, exponential, piecewise); 1cycle over steps. */
static nb_schedule_config schedule_config(const config *c, float lr, bool *per_epoch) {
    nb_schedule_config s = nb_schedule_defaults(c->schedule, lr);
    *per_epoch = true;
    switch (c->schedule) {
    case NB_SCHEDULE_POWER: s.steps = (float)(c->epochs > 1 ? c->epochs : 1) / 2, s.power = 1; break;
    case NB_SCHEDULE_EXPONENTIAL: s.steps = (float)(c->epochs > 1 ? c->epochs : 1); break;
    case NB_SCHEDULE_PIECEWISE: /* the rate falls tenfold at a half and at three quarters of training */
        s.n_boundaries = 2, s.boundaries[0] = c->epochs * 0.5f, s.boundaries[1] = c->epochs * 0.75f;
        if (s.boundaries[1] <= s.boundaries[0]) s.boundaries[1] = s.boundaries[0] + 1;
        s.values[0] = lr, s.values[1] = lr / 10, s.values[2] = lr / 100;
        break;
    case NB_SCHEDULE_ONECYCLE: *per_epoch = false; s.max_lr = lr; break;
    default: break;
    }
    return s;
}

static int load_data(const config *c, nb_dataset *train, nb_dataset *test) {
    if (nb_load_mnist_dir(c->data, train, test) != NB_OK) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
        return 1;
    }
    nb_dataset_scale(train, 1.0f / 255);
    nb_dataset_scale(test, 1.0f / 255);
    return 0;
}

/* JSON has no NaN or infinity: a value that is not finite is null, never a
 * number that looks measured. */
static void json_number(FILE *out, const char *key, double v, bool last) {
    if (isfinite(v)) fprintf(out, "\"%s\":%.6g%s", key, v, last ? "" : ",");
    else fprintf(out, "\"%s\":null%s", key, last ? "" : ",");
}

/* --plot F.png with --diagnose: the diagnostics in F.diagnostics.png. */
static nb_status plot_diagnostics(const config *c) {
    const char *dot = strrchr(c->plot, '.');
    size_t stem = dot ? (size_t)(dot - c->plot) : strlen(c->plot);
    char *path = malloc(strlen(c->plot) + 16);
    if (!path) return NB_ERROR;
    sprintf(path, "%.*s.diagnostics%s", (int)stem, c->plot, dot ? dot : "");
    nb_status st = nb_diagnostics_plot(c->diagnose, path);
    free(path);
    return st;
}

/* The data and the model of train's options, for train and lr-find: all
 * the training images and the test set loaded (the caller frees both),
 * train and val views into all, and the model; NULL after printing why
 * (nothing to free then). */
static nb_model *prepare(const config *c, nb_dataset *all, nb_dataset *test, nb_dataset *train, nb_dataset *val) {
    *all = *test = (nb_dataset){0};
    if (load_data(c, all, test)) return NULL;
    /* 55,000 for training and the last 5,000 for validation */
    int n = c->train_size && c->train_size < all->n ? c->train_size : all->n;
    int n_val = n == all->n && n > 11 * 5000 ? 5000 : n / 11; /* Fashion-MNIST's 5,000 of 60,000, else 1/11 */
    *train = *val = *all;
    train->n = n - n_val;
    val->x = all->x + (size_t)train->n * all->dim, val->y = all->y + train->n, val->n = n_val;
    nb_standardizer st = {0};
    nb_model *m = NULL;
    if (!c->standardize || nb_standardizer_fit(&st, train) == NB_OK) m = build_model(c, c->standardize ? &st : NULL);
    nb_standardizer_free(&st);
    if (!m) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
        nb_dataset_free(all), nb_dataset_free(test);
    }
    return m;
}

/* fit's options from train's: epochs, batches, seed, optimizer, schedule,
 * early stopping, backup and diagnostics (lr-find uses those it needs). */
static nb_fit_opts fit_options(const config *c, const nb_dataset *val, FILE *out) {
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = c->epochs, o.batch_size = c->batch_size, o.seed = c->seed, o.validation = val->n > 0 ? val : NULL;
    o.optimizer = optimizer_config(c);
    o.use_schedule = c->schedule != NB_SCHEDULE_CONSTANT;
    o.schedule = schedule_config(c, o.optimizer.lr, &o.schedule_per_epoch);
    o.patience = c->patience, o.restore_best = c->patience > 0;
    o.backup = c->resume;
    o.diagnose = c->diagnose, o.diagnose_every = c->diagnose_every;
    o.verbose = !c->quiet, o.out = out;
    return o;
}

static int cmd_train(int argc, char **argv) {
    config c;
    const char *model_path = NULL;
    int rc = parse_args(argc, argv, &c, &model_path, "train");
    if (rc) return rc == 1 ? 0 : rc;
    if (c.threads) nb_set_num_threads(c.threads);
    nb_dataset all, test, train, val;
    nb_model *m = prepare(&c, &all, &test, &train, &val);
    if (!m) return 1;
    FILE *out = c.json ? stderr : stdout; /* with --json, stdout ends with the JSON line */
    if (!c.quiet && root_process()) {
        fprintf(out, "nabla train: preset %s, %d training / %d validation / %d test images, %d threads, seed %llu\n",
                c.preset, train.n, val.n, test.n, nb_get_num_threads(), (unsigned long long)c.seed);
#ifdef NABLA_HAVE_DIST
        if (nb_dist_size(dist) > 1)
            fprintf(out, "data-parallel over %d processes: each takes its share of every batch of %d\n",
                    nb_dist_size(dist), c.batch_size);
#endif
        nb_model_summary(m, out);
    }
    nb_fit_opts o = fit_options(&c, &val, out);
#ifdef NABLA_HAVE_DIST
    nb_fit_dist fd = {0};
    if (nb_dist_fit(dist, false)) {
        fd = *nb_dist_fit(dist, false);
        fd.sync_batchnorm = c.sync_batch_norm;
        o.dist = &fd;
    }
#endif
    if (!root_process()) { /* the others train in silence and write nothing */
        c.quiet = true, c.json = false, c.save = c.history = c.plot = NULL;
        o.verbose = 0;
    }
    nb_history h;
    if (nb_fit(m, &train, &o, &h) != NB_OK) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
        nb_history_free(&h); /* a divergence keeps the epochs before it */
        nb_model_free(m), nb_dataset_free(&all), nb_dataset_free(&test);
        return 1;
    }
    double test_loss = NAN, test_acc = NAN, mc_acc = NAN, val_acc = h.n_epochs ? h.epochs[h.best_epoch > 0 ? h.best_epoch - 1 : h.n_epochs - 1].val_accuracy : NAN;
    int status = 0;
    if (nb_evaluate(m, &test, 256, &test_loss, &test_acc) != NB_OK ||
        (c.mc_samples > 0 && nb_predict_mc(m, &test, 256, c.mc_samples, c.seed, NULL, NULL, &mc_acc) != NB_OK) ||
        (c.save && nb_model_save(m, c.save) != NB_OK) || (c.history && nb_history_write_csv(&h, c.history) != NB_OK) ||
        (c.plot && nb_history_plot(&h, c.plot) != NB_OK) || (c.plot && c.diagnose && plot_diagnostics(&c) != NB_OK)) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
        status = 1;
    }
    if (!c.quiet) {
        fprintf(out, "test loss %.4f, test accuracy %.4f", test_loss, test_acc);
        if (c.mc_samples > 0) fprintf(out, ", MC dropout (%d samples) accuracy %.4f", c.mc_samples, mc_acc);
        fprintf(out, "; %d epochs in %.1f s, %.0f samples/s\n", h.n_epochs, h.train_seconds, h.samples_per_second);
    } else if (!c.json && root_process()) {
        printf("test accuracy %.4f\n", test_acc);
    }
    if (c.json) {
        printf("{\"preset\":\"%s\",", c.preset);
        json_number(stdout, "test_accuracy", test_acc, false);
        json_number(stdout, "test_loss", test_loss, false);
        json_number(stdout, "val_accuracy", val_acc, false);
        if (c.mc_samples > 0) json_number(stdout, "mc_test_accuracy", mc_acc, false), json_number(stdout, "mc_samples", c.mc_samples, false);
        json_number(stdout, "epochs_run", h.n_epochs, false);
        json_number(stdout, "train_seconds", h.train_seconds, false);
        json_number(stdout, "train_samples_per_second", h.samples_per_second, false);
        json_number(stdout, "threads", nb_get_num_threads(), false);
        printf("\"seed\":%llu}\n", (unsigned long long)c.seed);
    }
    nb_history_free(&h);
    nb_model_free(m);
    nb_dataset_free(&all), nb_dataset_free(&test);
    return status;
}

/* The learning-rate range test of train's model on train's data
 * (nb_lr_find): the model is built as train builds it and left untrained. */
static int cmd_lr_find(int argc, char **argv) {
    config c;
    const char *model_path = NULL;
    int rc = parse_args(argc, argv, &c, &model_path, "lr-find");
    if (rc) return rc == 1 ? 0 : rc;
    if (!(c.lr_min < c.lr_max)) {
        fprintf(stderr, "nabla lr-find: --lr-min %g must be below --lr-max %g\n", (double)c.lr_min, (double)c.lr_max);
        return 2;
    }
    if (c.threads) nb_set_num_threads(c.threads);
    nb_dataset all, test, train, val;
    nb_model *m = prepare(&c, &all, &test, &train, &val);
    if (!m) return 1;
    nb_fit_opts fo = fit_options(&c, &val, stdout);
    nb_lr_find_opts o = nb_lr_find_defaults();
    o.lr_min = c.lr_min, o.lr_max = c.lr_max, o.steps = c.steps, o.fit = &fo;
    if (!c.quiet) {
        printf("nabla lr-find: preset %s, %s, %d training images, batch %d, seed %llu, lr %g to %g over ", c.preset,
               nb_optimizer_name(fo.optimizer.kind), train.n, c.batch_size, (unsigned long long)c.seed, o.lr_min,
               o.lr_max);
        if (c.steps) printf("%ld steps\n", c.steps);
        else printf("one epoch\n");
    }
    nb_lr_find_result r;
    int status = 0;
    if (nb_lr_find(m, &train, &o, &r) != NB_OK) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
        status = nb_last_error_kind() == NB_ERR_INVALID_ARGUMENT ? 2 : 1;
    } else {
        if (!c.quiet) {
            printf("%ld of %ld steps", r.n, r.steps);
            if (r.diverged) printf(", stopped at lr %.3g: the smoothed loss passed 4x its best", r.lr[r.n - 1]);
            printf("\nsmoothed loss: %.4f at the start, lowest %.4f at lr %.3g; steepest descent at lr %.3g\n",
                   r.smoothed[0], r.smoothed[r.best], r.min_lr, r.steepest_lr);
        }
        printf("suggested learning rate: %.3g (the rate of the lowest smoothed loss / 10)\n", r.suggested_lr);
        if ((c.csv && nb_lr_find_write_csv(&r, c.csv) != NB_OK) || (c.plot && nb_lr_find_plot(&r, c.plot) != NB_OK)) {
            fprintf(stderr, "nabla: %s\n", nb_last_error());
            status = 1;
        }
        nb_lr_find_result_free(&r);
    }
    nb_model_free(m);
    nb_dataset_free(&all), nb_dataset_free(&test);
    return status;
}

/* eval and summary take --model and a few options of their own */
static int parse_model_args(int argc, char **argv, config *c, const char **model, const char *cmd) {
    c->batch_size = 0;
    int rc = parse_args(argc, argv, c, model, cmd);
    if (rc) return rc;
    if (!*model) {
        fprintf(stderr, "nabla %s: --model FILE is required\n", cmd);
        usage(stderr);
        return 2;
    }
    return 0;
}

static int cmd_eval(int argc, char **argv) {
    config c;
    const char *path = NULL;
    int rc = parse_model_args(argc, argv, &c, &path, "eval");
    if (rc) return rc == 1 ? 0 : rc;
    if (c.threads) nb_set_num_threads(c.threads);
    nb_model *m = nb_model_load(path);
    if (!m) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
        return 1;
    }
    /* A file keeps NaN and infinite weights faithfully (a diverged run saved
     * by hand), but evaluating them measures nothing. */
    nb_tensor *const *ts;
    for (int i = 0, n = nb_model_tensors(m, &ts); i < n; i++)
        for (size_t j = 0; j < ts[i]->size; j++)
            if (!isfinite(ts[i]->data[j])) {
                fprintf(stderr, "nabla: %s: tensor '%s' holds %g at index %zu: the model diverged; not evaluated\n",
                        path, ts[i]->name, (double)ts[i]->data[j], j);
                nb_model_free(m);
                return 1;
            }
    nb_dataset train = {0}, test = {0};
    if (load_data(&c, &train, &test)) {
        nb_model_free(m);
        return 1;
    }
    nb_dataset_free(&train);
    double loss, acc, mc_acc = NAN;
    int out_dims[4], classes = 0, shown = 5, batch = c.batch_size ? c.batch_size : 256;
    if (nb_model_output_dims(m, out_dims) == 1) classes = out_dims[0];
    if (classes < 1) {
        fprintf(stderr, "nabla: %s does not end in a vector of class scores\n", path);
        nb_model_free(m), nb_dataset_free(&test);
        return 1;
    }
    float *mean = NULL, *std = NULL;
    int status = 0;
    if (nb_evaluate(m, &test, batch, &loss, &acc) != NB_OK) status = 1;
    if (!status && c.mc_samples > 0) {
        mean = malloc(sizeof(float) * (size_t)test.n * classes), std = malloc(sizeof(float) * (size_t)test.n * classes);
        if (!mean || !std || nb_predict_mc(m, &test, batch, c.mc_samples, c.seed, mean, std, &mc_acc) != NB_OK) status = 1;
    }
    if (status) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
    } else {
        FILE *out = c.json ? stderr : stdout;
        fprintf(out, "%s: test loss %.4f, test accuracy %.4f\n", path, loss, acc);
        if (c.mc_samples > 0) {
            fprintf(out, "MC dropout, %d samples: test accuracy %.4f\n", c.mc_samples, mc_acc);
            for (int i = 0; i < shown && i < test.n; i++) {
                fprintf(out, "image %d (label %d): mean", i, (int)test.y[i]);
                for (int j = 0; j < classes; j++) fprintf(out, " %.2f", mean[i * classes + j]);
                fprintf(out, "\n             std ");
                for (int j = 0; j < classes; j++) fprintf(out, " %.2f", std[i * classes + j]);
                fprintf(out, "\n");
            }
        }
        if (c.json) {
            printf("{");
            json_number(stdout, "test_accuracy", acc, false);
            if (c.mc_samples > 0) json_number(stdout, "mc_test_accuracy", mc_acc, false), json_number(stdout, "mc_samples", c.mc_samples, false);
            json_number(stdout, "test_loss", loss, true);
            printf("}\n");
        }
    }
    free(mean), free(std);
    nb_dataset_free(&test);
    nb_model_free(m);
    return status;
}

static int cmd_summary(int argc, char **argv) {
    config c;
    const char *path = NULL;
    int rc = parse_model_args(argc, argv, &c, &path, "summary");
    if (rc) return rc == 1 ? 0 : rc;
    nb_model *m = nb_model_load(path);
    if (!m) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
        return 1;
    }
    nb_model_summary(m, stdout);
    nb_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) {
#ifdef NABLA_HAVE_DIST
        /* under mpirun, every process runs this: each takes its share of every batch */
        if (nb_dist_launched() && !(dist = nb_dist_init(NULL, NULL))) {
            fprintf(stderr, "nabla: %s\n", nb_last_error());
            return 1;
        }
        int rc = cmd_train(argc - 1, argv + 1);
        nb_dist_free(dist);
        return rc;
#else
        return cmd_train(argc - 1, argv + 1);
#endif
    }
#ifdef NABLA_HAVE_DIST
    /* eval, summary and lr-find are one process's work: under mpirun, rank 0 does it (without
     * MPI) and the others end at once, rather than all printing and writing the same files */
    if ((!strcmp(cmd, "eval") || !strcmp(cmd, "summary") || !strcmp(cmd, "lr-find")) && nb_dist_launched_rank() > 0)
        return 0;
#endif
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "summary")) return cmd_summary(argc - 1, argv + 1);
    if (!strcmp(cmd, "lr-find")) return cmd_lr_find(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "nabla: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
