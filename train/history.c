/* train/history.c — the history as CSV, and learning curves through gnuplot. */
#define _GNU_SOURCE /* sigtimedwait, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph/file.h"
#include "graph/internal.h"
#include "nabla/train.h"
#include "train/plot.h"

nb_status nb_history_write_csv(const nb_history *h, const char *path) {
    if (!h || !path) {
        nb__set_last_error("history csv: history or path is NULL");
        return NB_ERROR;
    }
    nb_atomic_file out;
    char err[256];
    if (!nb__atomic_open(&out, path, err, sizeof err)) {
        nb__set_error(nb__errno_kind(errno), "history csv: %s: %s", path, err);
        return NB_ERROR;
    }
    FILE *f = out.f;
    const char *metric = h->metric ? h->metric : "accuracy";
    fprintf(f, "epoch,loss,%s,val_loss,val_%s,lr,seconds", metric, metric);
    /* several outputs: each one's loss and metric too, as Keras names them */
    const int outs = h->n_outputs > 1 ? h->n_outputs : 0;
    for (int k = 0; k < outs; k++)
        if (h->output_metric[k])
            fprintf(f, ",%s_loss,%s_%s,val_%s_loss,val_%s_%s", h->output_names[k], h->output_names[k],
                    h->output_metric[k], h->output_names[k], h->output_names[k], h->output_metric[k]);
    fprintf(f, "\n");
    for (int i = 0; i < h->n_epochs; i++) {
        const nb_epoch_metrics *e = &h->epochs[i];
        fprintf(f, "%d,%.6f,%.6f,", e->epoch, e->loss, e->accuracy);
        if (e->has_validation) fprintf(f, "%.6f,%.6f,", e->val_loss, e->val_accuracy);
        else fprintf(f, ",,");
        fprintf(f, "%.6g,%.3f", e->lr, e->seconds);
        for (int k = 0; k < outs; k++) {
            if (!h->output_metric[k]) continue;
            fprintf(f, ",%.6f,%.6f", e->output_loss[k], e->output_metric[k]);
            if (e->has_validation) fprintf(f, ",%.6f,%.6f", e->val_output_loss[k], e->val_output_metric[k]);
            else fprintf(f, ",,");
        }
        fprintf(f, "\n");
    }
    if (!nb__atomic_commit(&out, true, err, sizeof err)) {
        nb__set_error(nb__errno_kind(errno), "history csv: %s: %s", path, err);
        return NB_ERROR;
    }
    return NB_OK;
}

/* True if an executable named name is in a folder of $PATH. */
static bool on_path(const char *name) {
    const char *p = getenv("PATH");
    char buf[4096];
    while (p && *p) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n && n + strlen(name) + 2 < sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name);
            if (access(buf, X_OK) == 0) return true;
        }
        p = colon ? colon + 1 : NULL;
    }
    return false;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The gnuplot script for h's curves, drawn on `term` to gnuplot's standard
 * output: no file name ever enters the script, so no name can be read as
 * gnuplot commands (a newline in a name once ran a shell command). */
static char *plot_script(const nb_history *h, const char *term, size_t *len) {
    char *buf = NULL;
    FILE *gp = open_memstream(&buf, len);
    if (!gp) return NULL;
    bool val = h->epochs[0].has_validation;
    fprintf(gp, "set terminal %s\nset output\nset multiplot layout 1,2\nset grid\nset xlabel 'epoch'\n", term);
    for (int panel = 0; panel < 2; panel++) {
        const char *what = panel ? (h->metric ? h->metric : "accuracy") : "loss";
        fprintf(gp, "set title '%s'\nset key %s\n", what, panel ? "bottom right" : "top right");
        fprintf(gp, "plot '-' with linespoints title 'training %s'%s\n", what,
                val ? ", '-' with linespoints title 'validation'" : "");
        for (int curve = 0; curve < (val ? 2 : 1); curve++) {
            for (int i = 0; i < h->n_epochs; i++) {
                const nb_epoch_metrics *e = &h->epochs[i];
                double v = panel ? (curve ? e->val_accuracy : e->accuracy) : (curve ? e->val_loss : e->loss);
                if (isfinite(v)) fprintf(gp, "%d %.6f\n", e->epoch, v);
                else fprintf(gp, "%d NaN\n", e->epoch); /* a gap in the curve */
            }
            fprintf(gp, "e\n");
        }
    }
    fprintf(gp, "unset multiplot\n");
    if (fclose(gp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Runs gnuplot (found on $PATH, no shell) with script on its standard
 * input and copies its standard output to out; its errors go to
 * /dev/null. True if it exited with status 0 and everything was copied. */
static bool run_gnuplot(const char *script, size_t len, FILE *out) {
    int in[2], from[2];
    if (pipe2(in, O_CLOEXEC) != 0) return false;
    if (pipe2(from, O_CLOEXEC) != 0) {
        close(in[0]), close(in[1]);
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, from[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"gnuplot", NULL};
    extern char **environ;
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]), close(from[1]);
    if (rc != 0) {
        close(in[1]), close(from[0]);
        return false;
    }
    /* gnuplot draws only at "unset multiplot", the script's last line, so
     * the script goes in whole before the picture comes out. */
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

/* The terminal for path's extension, or NULL. */
static const char *terminal(const char *path) {
    return ends_with(path, ".png")   ? "pngcairo size 1000,420 font 'sans,10' noenhanced"
           : ends_with(path, ".svg") ? "svg size 1000,420 dynamic font 'sans,10' noenhanced"
                                     : NULL;
}

/* Draws script with gnuplot into path: a temporary file beside it that
 * replaces it only if gnuplot succeeds. Takes script. */
static nb_status draw(const char *who, const char *path, char *script, size_t len) {
    if (!on_path("gnuplot")) {
        free(script);
        nb__set_error(NB_ERR_UNSUPPORTED, "%s: gnuplot is not installed (Debian: gnuplot-nox)", who);
        return NB_ERROR;
    }
    nb_atomic_file out;
    char err[256];
    if (!nb__atomic_open(&out, path, err, sizeof err)) {
        free(script);
        nb__set_error(nb__errno_kind(errno), "%s: %s: %s", who, path, err);
        return NB_ERROR;
    }
    /* If gnuplot dies, writing to it raises SIGPIPE, which would kill the
     * caller: block it in this thread, and take any pending one back. */
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    bool ok = run_gnuplot(script, len, out.f);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    free(script);
    if (!nb__atomic_commit(&out, ok, err, sizeof err)) {
        nb__set_error(ok ? nb__errno_kind(errno) : NB_ERR_IO, "%s: %s: %s", who, path, ok ? err : "gnuplot failed");
        return NB_ERROR;
    }
    return NB_OK;
}

nb_status nb_history_plot(const nb_history *h, const char *path) {
    if (!h || !path || h->n_epochs < 1) {
        nb__set_last_error("plot: %s", !h || !path ? "history or path is NULL" : "the history is empty");
        return NB_ERROR;
    }
    const char *term = terminal(path);
    if (!term) {
        nb__set_last_error("plot: %s: the name must end in .png or .svg", path);
        return NB_ERROR;
    }
    size_t len;
    char *script = plot_script(h, term, &len);
    if (!script) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "plot: out of memory");
        return NB_ERROR;
    }
    return draw("plot", path, script, len);
}

/* ---- the diagnostics of fit, drawn ---- */

typedef struct diag_row {
    long step;
    int layer;
    double sd, grad;
} diag_row;

/* The rows of a diagnostics CSV (fit's diagnose), in *rows (the caller
 * frees it); their count, or -1 with the error set. */
static long read_diagnostics(const char *csv, diag_row **rows) {
    FILE *f = fopen(csv, "r");
    *rows = NULL;
    if (!f) {
        nb__set_error(nb__errno_kind(errno), "diagnostics plot: %s: %s", csv, strerror(errno));
        return -1;
    }
    char line[512];
    long n = 0, cap = 0, at = 1;
    bool ok = fgets(line, sizeof line, f) &&
              !strcmp(line, "step,epoch,layer,name,act_mean,act_std,saturated,dead,grad_norm,update_ratio\n");
    if (!ok) nb__set_error(NB_ERR_CORRUPT, "diagnostics plot: %s: not a diagnostics file of fit (its header differs)", csv);
    while (ok && fgets(line, sizeof line, f)) {
        at++;
        diag_row r;
        double mean, sat, dead, ratio;
        int epoch;
        char name[64];
        if (sscanf(line, "%ld,%d,%d,%63[^,],%lf,%lf,%lf,%lf,%lf,%lf", &r.step, &epoch, &r.layer, name, &mean, &r.sd,
                   &sat, &dead, &r.grad, &ratio) != 10 || r.layer < 0 || r.layer > 1000000) {
            nb__set_error(NB_ERR_CORRUPT, "diagnostics plot: %s:%ld: not a row of fit's diagnostics", csv, at);
            ok = false;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            diag_row *grown = realloc(*rows, (size_t)cap * sizeof *grown);
            if (!grown) {
                nb__set_error(NB_ERR_OUT_OF_MEMORY, "diagnostics plot: out of memory");
                ok = false;
                break;
            }
            *rows = grown;
        }
        (*rows)[n++] = r;
    }
    fclose(f);
    if (ok && n == 0) nb__set_error(NB_ERR_CORRUPT, "diagnostics plot: %s has no rows", csv), ok = false;
    if (!ok) free(*rows), *rows = NULL;
    return ok ? n : -1;
}

/* Two panels against the layer's depth, one curve per diagnostic step (at
 * most 8, spread over training): the gradient norm on a log scale, where a
 * vanishing gradient is a falling line, and the activations' deviation. */
static char *diagnostics_script(const diag_row *rows, long n, const char *term, size_t *len) {
    /* the distinct steps in order (rows come step by step), then 8 evenly among them */
    long distinct = 0, steps[8], n_steps = 0;
    for (long i = 0; i < n; i++) distinct += i == 0 || rows[i].step != rows[i - 1].step;
    for (long i = 0, k = -1, want = 0; i < n && n_steps < 8; i++) {
        if (i && rows[i].step == rows[i - 1].step) continue;
        k++;
        if (k != (distinct <= 8 ? want : want * (distinct - 1) / 7)) continue;
        steps[n_steps++] = rows[i].step;
        want++;
    }
    char *buf = NULL;
    FILE *gp = open_memstream(&buf, len);
    if (!gp) return NULL;
    fprintf(gp, "set terminal %s\nset output\nset multiplot layout 1,2\nset grid\nset xlabel 'layer'\n", term);
    for (int panel = 0; panel < 2; panel++) {
        fprintf(gp, "set title '%s'\n%s\nset key outside right\nplot ", panel ? "activations: standard deviation"
                                                                            : "gradient norm (log scale)",
                panel ? "unset logscale y" : "set logscale y");
        for (long k = 0; k < n_steps; k++) fprintf(gp, "%s'-' with linespoints title 'step %ld'", k ? ", " : "", steps[k]);
        fprintf(gp, "\n");
        for (long k = 0; k < n_steps; k++) {
            for (long i = 0; i < n; i++)
                if (rows[i].step == steps[k]) {
                    const double v = panel ? rows[i].sd : rows[i].grad;
                    if (isfinite(v) && (panel || v > 0)) fprintf(gp, "%d %.6g\n", rows[i].layer, v);
                    else fprintf(gp, "%d NaN\n", rows[i].layer);
                }
            fprintf(gp, "e\n");
        }
    }
    fprintf(gp, "unset multiplot\n");
    if (fclose(gp) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

nb_status nb_diagnostics_plot(const char *csv, const char *path) {
    if (!csv || !path) {
        nb__set_last_error("diagnostics plot: %s is NULL", !csv ? "the CSV's name" : "path");
        return NB_ERROR;
    }
    const char *term = terminal(path);
    if (!term) {
        nb__set_last_error("diagnostics plot: %s: the name must end in .png or .svg", path);
        return NB_ERROR;
    }
    diag_row *rows;
    long n = read_diagnostics(csv, &rows);
    if (n < 0) return NB_ERROR;
    size_t len;
    char *script = diagnostics_script(rows, n, term, &len);
    free(rows);
    if (!script) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "diagnostics plot: out of memory");
        return NB_ERROR;
    }
    return draw("diagnostics plot", path, script, len);
}

/* ---- for train/'s other plots (train/plot.h) ---- */

const char *nb__plot_terminal(const char *path) { return terminal(path); }

nb_status nb__plot_draw(const char *who, const char *path, char *script, size_t len) {
    return draw(who, path, script, len);
}
