/* train/progress.c — "1719/1719 [==============================] - 3s 2ms/step - loss: ..." */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "train/progress.h"

#define BAR 30

double nb__now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void nb__progress_init(nb_progress *p, FILE *out, bool on, int steps, const char *metric) {
    p->metric = metric ? metric : "accuracy";
    p->out = out;
    p->on = on;
    p->tty = on && isatty(fileno(out));
    p->steps = steps;
    p->start = p->last_draw = 0;
}

void nb__progress_epoch(nb_progress *p, int epoch, int epochs, double now) {
    p->start = now;
    p->last_draw = 0;
    if (p->on) fprintf(p->out, "Epoch %d/%d\n", epoch, epochs);
}

/* "[=========>....................]" with the arrow at done/steps */
static void bar(FILE *out, int done, int steps) {
    int filled = steps ? (int)((long)BAR * done / steps) : BAR;
    fputc('[', out);
    for (int i = 0; i < BAR; i++) fputc(i < filled ? '=' : (i == filled && done < steps ? '>' : '.'), out);
    fputc(']', out);
}

static void duration(FILE *out, double s) {
    long secs = (long)(s + 0.5);
    if (secs >= 3600) fprintf(out, "%ld:%02ld:%02ld", secs / 3600, secs / 60 % 60, secs % 60);
    else fprintf(out, "%ld:%02ld", secs / 60, secs % 60);
}

void nb__progress_step(nb_progress *p, int step, double loss, double accuracy, double now) {
    if (!p->tty || (now - p->last_draw < 0.1 && step < p->steps)) return;
    p->last_draw = now;
    int w = snprintf(NULL, 0, "%d", p->steps);
    fprintf(p->out, "\r%*d/%d ", w, step, p->steps);
    bar(p->out, step, p->steps);
    double eta = step ? (now - p->start) / step * (p->steps - step) : 0;
    fprintf(p->out, " - ETA ");
    duration(p->out, eta);
    fprintf(p->out, " - loss: %.4f - %s: %.4f\033[K", loss, p->metric, accuracy);
    fflush(p->out);
}

void nb__progress_diverged(nb_progress *p, long step, double loss) {
    if (!p->on) return;
    if (p->tty) fprintf(p->out, "\n");
    if (step > 0) fprintf(p->out, "Batch %ld: invalid loss %g, terminating training\n", step, loss);
    else fprintf(p->out, "Validation: invalid loss %g, terminating training\n", loss);
    fflush(p->out);
}

void nb__progress_end(nb_progress *p, const nb_epoch_metrics *m) {
    if (!p->on) return;
    if (p->tty) fputc('\r', p->out);
    fprintf(p->out, "%d/%d ", p->steps, p->steps);
    bar(p->out, p->steps, p->steps);
    double ms = 1000.0 * m->step_seconds;
    fprintf(p->out, " - %.0fs %.*fms/step - loss: %.4f - %s: %.4f", m->seconds, ms < 10 ? 1 : 0, ms,
            m->loss, p->metric, m->accuracy);
    if (m->has_validation)
        fprintf(p->out, " - val_loss: %.4f - val_%s: %.4f", m->val_loss, p->metric, m->val_accuracy);
    fprintf(p->out, " - lr: %.3g%s\n", m->lr, p->tty ? "\033[K" : "");
    fflush(p->out);
}
