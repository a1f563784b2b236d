/* train/history.c — the history as CSV, and learning curves through gnuplot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph/internal.h"
#include "nabla/train.h"

/* Opens a temporary file beside path (path.tmp.XXXXXX) for an atomic replace. */
static FILE *open_temp(const char *path, char *tmp, size_t len) {
    snprintf(tmp, len, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
    }
    return f;
}

/* Flushes, syncs and renames tmp over path; on any failure removes tmp. */
static nb_status commit_temp(FILE *f, const char *tmp, const char *path, const char *who) {
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        nb__set_last_error("%s: could not write %s", who, path);
        return NB_ERROR;
    }
    return NB_OK;
}

nb_status nb_history_write_csv(const nb_history *h, const char *path) {
    char tmp[4096];
    if (!h || !path) {
        nb__set_last_error("history csv: history or path is NULL");
        return NB_ERROR;
    }
    FILE *f = open_temp(path, tmp, sizeof tmp);
    if (!f) {
        nb__set_last_error("history csv: cannot create a file beside %s", path);
        return NB_ERROR;
    }
    fprintf(f, "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n");
    for (int i = 0; i < h->n_epochs; i++) {
        const nb_epoch_metrics *e = &h->epochs[i];
        fprintf(f, "%d,%.6f,%.6f,", e->epoch, e->loss, e->accuracy);
        if (e->has_validation) fprintf(f, "%.6f,%.6f,", e->val_loss, e->val_accuracy);
        else fprintf(f, ",,");
        fprintf(f, "%.6g,%.3f\n", e->lr, e->seconds);
    }
    return commit_temp(f, tmp, path, "history csv");
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
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        nb__set_last_error("plot: cannot create a file beside %s", path);
        return NB_ERROR;
    }
    close(fd);
    FILE *gp = popen("gnuplot 2>/dev/null", "w");
    if (!gp) {
        unlink(tmp);
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
    int status = pclose(gp);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        unlink(tmp);
        nb__set_last_error("plot: gnuplot %s (install gnuplot-nox)",
                           WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "is not installed" : "failed");
        return NB_ERROR;
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        nb__set_last_error("plot: could not write %s", path);
        return NB_ERROR;
    }
    return NB_OK;
}
