/* train/progress.h — Keras's progress display for fit. Internal to train/. */
#ifndef NABLA_TRAIN_PROGRESS_H
#define NABLA_TRAIN_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "nabla/train.h"

typedef struct nb_progress {
    FILE *out;
    bool on;          /* verbose */
    bool tty;         /* redraw one line while the epoch runs */
    int steps;        /* per epoch */
    const char *metric; /* "accuracy" or "mae" */
    double start, last_draw;
} nb_progress;

void nb__progress_init(nb_progress *p, FILE *out, bool on, int steps, const char *metric);
/* "Epoch 3/10" */
void nb__progress_epoch(nb_progress *p, int epoch, int epochs, double now);
/* After step (1-based) with the running means so far; redraws at most ten
 * times a second, on a terminal only. */
void nb__progress_step(nb_progress *p, int step, double loss, double accuracy, double now);
/* The epoch's closing line, validation included. */
void nb__progress_end(nb_progress *p, const nb_epoch_metrics *m);

/* The line that ends an epoch stopped by a non-finite loss, as Keras's
 * TerminateOnNaN says it: "Batch 12: invalid loss, terminating training". */
void nb__progress_diverged(nb_progress *p, long step, double loss);

/* Seconds on a monotonic clock. */
double nb__now(void);

#endif
