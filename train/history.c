/* train/history.c — the history as CSV, and learning curves through gnuplot. */
#define _GNU_SOURCE /* sigtimedwait */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph/file.h"
#include "graph/internal.h"
#include "nabla/train.h"

nb_status nb_history_write_csv(const nb_history *h, const char *path) {
    if (!h || !path) {
        nb__set_last_error("history csv: history or path is NULL");
        return NB_ERROR;
    }
    nb_atomic_file out;
    char err[256];
    if (!nb__atomic_open(&out, path, err, sizeof err)) {
        nb__set_last_error("history csv: %s: %s", path, err);
        return NB_ERROR;
    }
    FILE *f = out.f;
    fprintf(f, "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n");
    for (int i = 0; i < h->n_epochs; i++) {
        const nb_epoch_metrics *e = &h->epochs[i];
        fprintf(f, "%d,%.6f,%.6f,", e->epoch, e->loss, e->accuracy);
        if (e->has_validation) fprintf(f, "%.6f,%.6f,", e->val_loss, e->val_accuracy);
        else fprintf(f, ",,");
        fprintf(f, "%.6g,%.3f\n", e->lr, e->seconds);
    }
    if (!nb__atomic_commit(&out, true, err, sizeof err)) {
        nb__set_last_error("history csv: %s: %s", path, err);
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

/* gnuplot reads the data inline ('-'), one block per curve; the picture
 * goes to a temporary file that replaces path only if gnuplot succeeds. */
nb_status nb_history_plot(const nb_history *h, const char *path) {
    if (!h || !path || h->n_epochs < 1) {
        nb__set_last_error("plot: %s", !h || !path ? "history or path is NULL" : "the history is empty");
        return NB_ERROR;
    }
    const char *term = ends_with(path, ".png") ? "pngcairo size 1000,420 font 'sans,10'"
                     : ends_with(path, ".svg") ? "svg size 1000,420 dynamic font 'sans,10'"
                                               : NULL;
    if (!term) {
        nb__set_last_error("plot: %s: the name must end in .png or .svg", path);
        return NB_ERROR;
    }
    if (strchr(path, '\'')) {
        nb__set_last_error("plot: %s: quotes in the file name are not supported", path);
        return NB_ERROR;
    }
    if (!on_path("gnuplot")) {
        nb__set_last_error("plot: gnuplot is not installed (Debian: gnuplot-nox)");
        return NB_ERROR;
    }
    nb_atomic_file out;
    char err[256];
    if (!nb__atomic_open(&out, path, err, sizeof err)) {
        nb__set_last_error("plot: %s: %s", path, err);
        return NB_ERROR;
    }
    const char *tmp = out.tmp;
    /* If gnuplot dies, writing to it raises SIGPIPE, which would kill the
     * caller: block it in this thread, and take any pending one back. */
    sigset_t pipe_set, old_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    FILE *gp = popen("gnuplot 2>/dev/null", "w");
    if (!gp) {
        pthread_sigmask(SIG_SETMASK, &old_set, NULL);
        nb__atomic_commit(&out, false, err, sizeof err);
        nb__set_last_error("plot: cannot run gnuplot");
        return NB_ERROR;
    }
    bool val = h->epochs[0].has_validation;
    fprintf(gp, "set terminal %s\nset output '%s'\nset multiplot layout 1,2\nset grid\nset xlabel 'epoch'\n",
            term, tmp);
    for (int panel = 0; panel < 2; panel++) {
        const char *what = panel ? "accuracy" : "loss";
        fprintf(gp, "set title '%s'\nset key %s\n", what, panel ? "bottom right" : "top right");
        fprintf(gp, "plot '-' with linespoints title 'training %s'%s\n", what,
                val ? ", '-' with linespoints title 'validation'" : "");
        for (int curve = 0; curve < (val ? 2 : 1); curve++) {
            for (int i = 0; i < h->n_epochs; i++) {
                const nb_epoch_metrics *e = &h->epochs[i];
                double v = panel ? (curve ? e->val_accuracy : e->accuracy) : (curve ? e->val_loss : e->loss);
                fprintf(gp, "%d %.6f\n", e->epoch, v);
            }
            fprintf(gp, "e\n");
        }
    }
    fprintf(gp, "unset multiplot\nset output\n");
    bool wrote = fflush(gp) == 0 && !ferror(gp);
    int status = pclose(gp);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    bool ok = wrote && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!nb__atomic_commit(&out, ok, err, sizeof err)) {
        nb__set_last_error("plot: %s: %s", path, ok ? err : "gnuplot failed");
        return NB_ERROR;
    }
    return NB_OK;
}
