/* examples/lab.c — the chapter-11 lab's shared helpers (see lab.h). */
#define _GNU_SOURCE /* open_memstream, pipe2 */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static bool mkdirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return false;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(buf, 0777) == 0 || errno == EEXIST;
}

bool lab_parse(int argc, char **argv, const char *prog, lab_args *a) { return lab_parse_seeds(argc, argv, prog, 3, a); }

bool lab_parse_seeds(int argc, char **argv, const char *prog, int seeds, lab_args *a) {
    *a = (lab_args){.prog = prog, .seeds = seeds};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) a->quick = true;
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) a->data = argv[++i];
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) a->seeds = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !a->out) a->out = argv[i];
        else a->out = NULL, i = argc, a->seeds = 0;
    }
    if (!a->out || a->seeds < 1 || a->seeds > 100) {
        fprintf(stderr, "usage: %s [--quick] [--data DIR] [--seeds N] OUTDIR\n", prog);
        return false;
    }
    if (!mkdirs(a->out)) {
        fprintf(stderr, "%s: cannot make %s: %s\n", prog, a->out, strerror(errno));
        return false;
    }
    return true;
}

int lab_fail(const lab_args *a, const char *what) {
    fprintf(stderr, "%s: %s: %s\n", a->prog, what, nb_last_error());
    return 3;
}

bool lab_load(const lab_args *a, int n_train, int n_valid, int n_test, bool standardize, nb_dataset *train,
              nb_dataset *valid, nb_dataset *test) {
    nb_dataset all, t10k;
    *train = *valid = *test = (nb_dataset){0};
    if (nb_load_mnist_dir(a->data, &all, &t10k) != NB_OK) return false;
    bool ok = n_train >= 1 && n_train + n_valid <= all.n && n_test <= t10k.n &&
              nb_dataset_slice(&all, 0, n_train, train) == NB_OK &&
              (n_valid < 1 || nb_dataset_slice(&all, all.n - n_valid, n_valid, valid) == NB_OK) &&
              (n_test < 1 || nb_dataset_slice(&t10k, 0, n_test, test) == NB_OK);
    nb_dataset_free(&all), nb_dataset_free(&t10k);
    if (!ok) return false;
    nb_dataset_scale(train, 1.0f / 255), nb_dataset_scale(valid, 1.0f / 255), nb_dataset_scale(test, 1.0f / 255);
    if (standardize) {
        nb_standardizer s;
        if (nb_standardizer_fit(&s, train) != NB_OK) return false;
        ok = nb_standardizer_apply(&s, train) == NB_OK && (n_valid < 1 || nb_standardizer_apply(&s, valid) == NB_OK) &&
             (n_test < 1 || nb_standardizer_apply(&s, test) == NB_OK);
        nb_standardizer_free(&s);
    }
    return ok;
}

void lab_mean_std(const double *v, int n, double *mean, double *std) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    double m = n > 0 ? s / n : NAN;
    for (int i = 0; i < n; i++) q += (v[i] - m) * (v[i] - m);
    if (mean) *mean = m;
    if (std) *std = n > 1 ? sqrt(q / (n - 1)) : 0;
}

const char *lab_pm(char *buf, size_t len, const double *v, int n, int digits) {
    double m, s;
    lab_mean_std(v, n, &m, &s);
    snprintf(buf, len, "%.*f ± %.*f", digits, m, digits, s);
    return buf;
}

/* ---- markdown ---- */

bool lab_md_open(lab_md *md, const lab_args *a, const char *title) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.md", a->out, a->prog);
    md->f = fopen(path, "w");
    md->ok = md->f != NULL;
    if (!md->f) {
        fprintf(stderr, "%s: cannot write %s: %s\n", a->prog, path, strerror(errno));
        return false;
    }
    lab_md_printf(md, "## %s\n\n", title);
    lab_md_printf(md, "`%s%s --seeds %d` (%s mode)\n\n", a->prog, a->quick ? " --quick" : "", a->seeds,
                  a->quick ? "quick" : "full");
    return true;
}

void lab_md_printf(lab_md *md, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (md->f && vfprintf(md->f, fmt, ap) < 0) md->ok = false;
    va_end(ap);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

void lab_md_header(lab_md *md, int n, const char *const *cols) {
    for (int i = 0; i < n; i++) lab_md_printf(md, "| %s ", cols[i]);
    lab_md_printf(md, "|\n");
    for (int i = 0; i < n; i++) lab_md_printf(md, "|---");
    lab_md_printf(md, "|\n");
}

void lab_md_figure(lab_md *md, const lab_args *a, const char *file, int plot_status, const char *caption) {
    (void)a;
    if (plot_status == LAB_PLOT_OK) lab_md_printf(md, "![%s](%s)\n\n", caption, file);
    else
        lab_md_printf(md, "(figure %s not drawn: %s)\n\n", file,
                      plot_status == LAB_PLOT_SKIPPED ? "gnuplot is not installed" : "gnuplot failed");
}

bool lab_md_close(lab_md *md) {
    bool ok = md->ok && md->f && fclose(md->f) == 0;
    md->f = NULL;
    return ok;
}

/* ---- figures ---- */

static bool on_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/bin:/bin";
    char buf[4096];
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && n + strlen(prog) + 2 < sizeof buf) {
            memcpy(buf, p, n);
            buf[n] = '/';
            strcpy(buf + n + 1, prog);
            if (access(buf, X_OK) == 0) return true;
        }
        p += n + (e ? 1 : 0);
    }
    return false;
}

/* A string as a gnuplot single-quoted literal: quotes doubled, control
 * characters dropped, so no title can end the string or the line. */
static void quoted(FILE *gp, const char *s) {
    fputc('\'', gp);
    for (; s && *s; s++) {
        if (*s == '\'') fputs("''", gp);
        else if ((unsigned char)*s >= 0x20) fputc(*s, gp);
    }
    fputc('\'', gp);
}

static void panel_script(FILE *gp, const lab_fig *f, int n, const lab_curve *c) {
    fputs("reset\nset grid\n", gp);
    fputs("set title ", gp), quoted(gp, f->title ? f->title : ""), fputc('\n', gp);
    fputs("set xlabel ", gp), quoted(gp, f->xlabel ? f->xlabel : ""), fputc('\n', gp);
    fputs("set ylabel ", gp), quoted(gp, f->ylabel ? f->ylabel : ""), fputc('\n', gp);
    if (f->logx) fputs("set logscale x\n", gp);
    if (f->logy) fputs("set logscale y\nset format y '%g'\n", gp);
    if (f->ymin < f->ymax) fprintf(gp, "set yrange [%.9g:%.9g]\n", f->ymin, f->ymax);
    if (f->xtics > 0) fprintf(gp, "set xtics %.9g\n", f->xtics);
    const char *key = f->key ? f->key : "top right";
    if (!strcmp(key, "off")) fputs("unset key\n", gp);
    else {
        /* only gnuplot key words: anything else is dropped */
        fputs("set key", gp);
        char word[32];
        for (const char *p = key; *p;) {
            size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyz");
            if (k > 0 && k < sizeof word) memcpy(word, p, k), word[k] = '\0', fprintf(gp, " %s", word);
            p += k ? k : 1;
        }
        fputs(" noautotitle font ',8'\n", gp);
    }
    const char *style = f->style ? f->style : "lines";
    if (strspn(style, "abcdefghijklmnopqrstuvwxyz ") != strlen(style)) style = "lines";
    fputs("plot ", gp);
    for (int i = 0; i < n; i++) {
        /* 8 colours, then the same colours dashed */
        fprintf(gp, "%s'-' using 1:2 with %s lw 1.5 lc %d dt %d title ", i ? ", " : "", style, i % 8 + 1, i / 8 % 4 + 1);
        quoted(gp, c[i].title);
    }
    fputc('\n', gp);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < c[i].n; k++) {
            double x = c[i].x ? c[i].x[k] : k, y = c[i].y[k];
            bool gap = !isfinite(x) || !isfinite(y) || (f->logy && y <= 0) || (f->logx && x <= 0);
            if (gap) fprintf(gp, "%.9g NaN\n", isfinite(x) ? x : 0.0);
            else fprintf(gp, "%.9g %.9g\n", x, y);
        }
        fputs("e\n", gp);
    }
}

/* gnuplot (from $PATH, no shell) reads script on stdin and writes the
 * picture on stdout, which goes to out. */
static bool run_gnuplot(const char *script, size_t len, FILE *out) {
    int in[2], from[2];
    if (pipe2(in, O_CLOEXEC) != 0) return false;
    if (pipe2(from, O_CLOEXEC) != 0) return close(in[0]), close(in[1]), false;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, from[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"gnuplot", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]), close(from[1]);
    if (rc != 0) return close(in[1]), close(from[0]), false;
    /* gnuplot draws at "unset multiplot", the script's last line: the whole
     * script goes in before the picture comes out, so no deadlock. */
    bool ok = true;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(in[1], script + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            ok = false;
            break;
        }
        off += (size_t)w;
    }
    close(in[1]);
    char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t r = read(from[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            ok = ok && r == 0;
            break;
        }
        total += (size_t)r;
        if (fwrite(buf, 1, (size_t)r, out) != (size_t)r) ok = false;
    }
    close(from[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return false;
    return ok && total > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int lab_plot_panels(const lab_args *a, const char *file, int rows, int cols, int width, int height, const lab_fig *figs,
                    const int *n, const lab_curve *const *c) {
    static int have = -1;
    if (have < 0) have = on_path("gnuplot");
    if (!have) return LAB_PLOT_SKIPPED;
    char *script = NULL;
    size_t len = 0;
    FILE *gp = open_memstream(&script, &len);
    if (!gp) return LAB_PLOT_FAILED;
    fprintf(gp, "set terminal pngcairo noenhanced size %d,%d font 'sans,9'\nset output\nset multiplot layout %d,%d\n", width,
            height, rows, cols);
    for (int p = 0; p < rows * cols; p++) panel_script(gp, &figs[p], n[p], c[p]);
    fputs("unset multiplot\n", gp);
    if (fclose(gp) != 0) return free(script), LAB_PLOT_FAILED;

    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", a->out, file);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *out = fopen(tmp, "wb");
    if (!out) return free(script), LAB_PLOT_FAILED;
    /* a gnuplot that dies would raise SIGPIPE on our write: ignore it here */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    bool ok = run_gnuplot(script, len, out);
    sigaction(SIGPIPE, &old, NULL);
    free(script);
    ok = fclose(out) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        fprintf(stderr, "%s: gnuplot failed to draw %s\n", a->prog, file);
        return LAB_PLOT_FAILED;
    }
    return LAB_PLOT_OK;
}

int lab_plot(const lab_args *a, const char *file, const lab_fig *f, int n, const lab_curve *c) {
    return lab_plot_panels(a, file, 1, 1, 640, 400, f, &n, &c);
}

/* ---- deep dense nets ---- */

static nb_layer *add(nb_model *m, nb_layer_spec s) { return nb_model_add(m, &s); }

nb_model *lab_net(const lab_net_cfg *c, nb_layer **block_out, nb_layer **block_dense) {
    nb_model *m = nb_model_new(1, (int[]){c->in_dim}, c->seed);
    if (!m) return NULL;
    bool normal01 = c->init && !strcmp(c->init, "random_normal");
    nb_rng rng;
    nb_rng_seed(&rng, c->seed, 0x11ab);
    if (c->input_bn && !add(m, nb_batch_norm_spec())) return nb_model_free(m), NULL;
    for (int i = 0; i < c->depth; i++) {
        bool bn_before = c->batch_norm && !c->bn_after;
        nb_layer_spec d = nb_dense_spec(c->width, bn_before ? NULL : c->activation, normal01 ? "he_normal" : c->init);
        d.alpha = c->alpha, d.no_bias = bn_before;
        d.kernel_reg = (nb_regularizer){c->l1, c->l2};
        d.max_norm = c->max_norm;
        nb_layer *dense = add(m, d), *last = dense;
        if (!dense) return nb_model_free(m), NULL;
        if (normal01) { /* Keras's RandomNormal(stddev=1): no named initializer gives it */
            nb_tensor *k = nb_layer_tensor(dense, 0);
            for (size_t j = 0; j < k->size; j++) k->data[j] = nb_rng_normal(&rng);
        }
        if (c->batch_norm) last = add(m, nb_batch_norm_spec());
        if (bn_before) {
            nb_layer_spec act = nb_activation_spec(c->activation);
            act.alpha = c->alpha;
            last = add(m, act);
        }
        if (c->dropout > 0) last = add(m, nb_dropout_spec(c->dropout));
        if (c->alpha_dropout > 0) last = add(m, nb_alpha_dropout_spec(c->alpha_dropout));
        if (!last) return nb_model_free(m), NULL;
        if (block_out) block_out[i] = last;
        if (block_dense) block_dense[i] = dense;
    }
    if (!add(m, nb_dense_spec(c->classes, NULL, normal01 ? "glorot_uniform" : c->init)))
        return nb_model_free(m), NULL;
    return m;
}

bool lab_probe_new(lab_probe *p, nb_model *m, int depth, nb_layer *const *block_out, nb_layer *const *block_dense,
                   int batch, int in_dim) {
    *p = (lab_probe){.depth = depth};
    p->g = nb_graph_new();
    p->out = calloc((size_t)depth, sizeof *p->out);
    p->kernel = calloc((size_t)depth, sizeof *p->kernel);
    if (!p->g || !p->out || !p->kernel) return false;
    p->x = nb_input(p->g, "x", 2, (int[]){batch, in_dim});
    p->y = nb_input(p->g, "labels", 1, (int[]){batch});
    nb_node *h = p->x;
    int block = 0;
    for (int i = 0; i < nb_model_layer_count(m); i++) {
        nb_layer *l = nb_model_layer(m, i);
        h = nb_layer_apply(l, p->g, h, false);
        if (block < depth && l == block_dense[block]) p->kernel[block] = nb_layer_tensor(l, 0);
        if (block < depth && l == block_out[block]) p->out[block++] = h;
    }
    p->loss = nb_softmax_cross_entropy(p->g, h, p->y);
    if (nb_graph_status(p->g) != NB_OK) {
        fprintf(stderr, "probe: %s\n", nb_graph_error(p->g));
        return false;
    }
    return block == depth;
}

void lab_probe_free(lab_probe *p) {
    nb_graph_free(p->g);
    free(p->out), free(p->kernel);
    *p = (lab_probe){0};
}

bool lab_probe_run(lab_probe *p, const float *x, const float *y, int batch) {
    nb_feed(p->g, p->x, x, batch);
    nb_feed(p->g, p->y, y, batch);
    nb_forward(p->g, NB_TRAINING);
    nb_backward(p->g, p->loss);
    if (nb_graph_status(p->g) != NB_OK) {
        fprintf(stderr, "probe: %s\n", nb_graph_error(p->g));
        return false;
    }
    return true;
}

void lab_probe_stats(const lab_probe *p, int i, double *mean, double *std) {
    const float *v = nb_node_value(p->out[i]);
    size_t n = nb_node_size(p->out[i]);
    double s = 0, q = 0;
    for (size_t k = 0; k < n; k++) s += v[k];
    double m = s / (double)n;
    for (size_t k = 0; k < n; k++) q += (v[k] - m) * (v[k] - m);
    *mean = m, *std = sqrt(q / (double)n);
}

double lab_grad_norm(const nb_tensor *t) {
    if (!t || !t->grad) return NAN;
    double s = 0;
    for (size_t k = 0; k < t->size; k++) s += (double)t->grad[k] * t->grad[k];
    return sqrt(s);
}

/* ---- reusing layers ---- */

nb_model *lab_reuse(const nb_model *src, int n, int in_dim, uint64_t seed) {
    nb_model *m = nb_model_new(1, (int[]){in_dim}, seed);
    for (int i = 0; m && i < n; i++)
        if (!nb_model_add_from(m, nb_model_layer(src, i), false)) return nb_model_free(m), NULL;
    return m;
}

void lab_set_trainable(nb_model *m, int n, bool trainable) {
    for (int i = 0; i < n; i++) nb_layer_set_trainable(nb_model_layer(m, i), trainable);
}

nb_status lab_fit(nb_model *m, const nb_dataset *train, const nb_fit_opts *o, double *curve, int *n, int cap) {
    nb_history h;
    nb_status rc = nb_fit(m, train, o, &h);
    if (rc != NB_OK) return rc;
    for (int e = 0; e < h.n_epochs && *n < cap; e++) curve[(*n)++] = h.epochs[e].val_accuracy;
    nb_history_free(&h);
    return NB_OK;
}

const char *const lab_arm_name[LAB_ARMS] = {"from scratch", "reused, frozen", "reused, frozen then fine-tuned"};

bool lab_few_labels(const nb_model *pre, int n_reuse, int arm, const nb_dataset *labeled, const nb_dataset *valid,
                    const nb_dataset *test, int epochs, int frozen_epochs, uint64_t seed, double *curve,
                    double *test_acc) {
    nb_model *m;
    if (arm == LAB_SCRATCH) { /* the same configs, fresh weights */
        m = nb_model_new(1, (int[]){labeled->dim}, seed);
        for (int i = 0; m && i < n_reuse; i++)
            if (!nb_model_add(m, nb_layer_spec_of(nb_model_layer(pre, i)))) nb_model_free(m), m = NULL;
    } else m = lab_reuse(pre, n_reuse, labeled->dim, seed);
    nb_layer_spec head = nb_dense_spec(10, "softmax", NULL);
    if (!m || !nb_model_add(m, &head)) return nb_model_free(m), false;
    nb_fit_opts o = nb_fit_defaults();
    o.seed = seed, o.verbose = 0, o.validation = valid, o.optimizer = nb_optimizer_defaults(NB_NADAM);
    int n = 0, first = arm == LAB_FROZEN ? epochs : arm == LAB_FINETUNED ? frozen_epochs : 0;
    bool ok = true;
    if (first > 0) { /* the reused layers frozen */
        lab_set_trainable(m, n_reuse, false);
        o.epochs = first, o.optimizer.lr = 0.01f;
        ok = lab_fit(m, labeled, &o, curve, &n, epochs) == NB_OK;
        lab_set_trainable(m, n_reuse, true);
    }
    if (ok && first < epochs) {
        o.epochs = epochs - first, o.seed = seed + 1000; /* another shuffle than the first phase's */
        o.optimizer.lr = 0.001f;
        ok = lab_fit(m, labeled, &o, curve, &n, epochs) == NB_OK;
    }
    ok = ok && nb_evaluate(m, test, 256, NULL, test_acc) == NB_OK;
    nb_model_free(m);
    return ok;
}

void lab_few_labels_report(lab_md *md, const lab_args *a, double acc[LAB_ARMS][LAB_FEW_SEEDS],
                           double curve[LAB_ARMS][LAB_FEW_SEEDS][LAB_FEW_EPOCHS], int epochs,
                           const char *title, const char *file) {
    const char *cols[] = {"classifier", "test accuracy", "gain over scratch (points)"};
    lab_md_header(md, 3, cols);
    for (int k = 0; k < LAB_ARMS; k++) {
        double gain[LAB_FEW_SEEDS];
        for (int s = 0; s < a->seeds; s++) gain[s] = 100 * (acc[k][s] - acc[0][s]);
        char b1[64], b2[64];
        lab_md_printf(md, "| %s | %s | %s |\n", lab_arm_name[k], lab_pm(b1, 64, acc[k], a->seeds, 4),
                      k ? lab_pm(b2, 64, gain, a->seeds, 2) : "");
    }
    lab_md_printf(md, "\n");

    static double mean_curve[LAB_ARMS][LAB_FEW_EPOCHS], ep[LAB_FEW_EPOCHS];
    lab_curve c[LAB_ARMS];
    for (int k = 0; k < LAB_ARMS; k++) {
        for (int e = 0; e < epochs; e++) {
            double v[LAB_FEW_SEEDS];
            for (int s = 0; s < a->seeds; s++) v[s] = curve[k][s][e];
            lab_mean_std(v, a->seeds, &mean_curve[k][e], NULL);
            ep[e] = e + 1;
        }
        c[k] = (lab_curve){lab_arm_name[k], epochs, ep, mean_curve[k]};
    }
    lab_fig f = {title, "epoch", "accuracy", .style = "linespoints", .key = "bottom right"};
    lab_md_figure(md, a, file, lab_plot(a, file, &f, LAB_ARMS, c), "learning curves");
}
