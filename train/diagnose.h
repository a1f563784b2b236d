/* train/diagnose.h — gradient-health diagnostics for fit (nb_fit_opts's
 * diagnose): per layer, the statistics of its activations, its weights'
 * gradient norm and the update-to-weight ratio, from the training step's
 * own values. Internal to train/. */
#ifndef NABLA_TRAIN_DIAGNOSE_H
#define NABLA_TRAIN_DIAGNOSE_H

#include <stdio.h>

#include "nabla/train.h"

typedef struct nb__diag nb__diag;

/* Diagnostics of m's layers, whose outputs in the training graph are
 * layer_out (nb_model_layer_count of them, NULL for one not built),
 * written as CSV to path every `every` steps (>= 1) and at step 0;
 * warnings go to warn (NULL: none). Everything a diagnostic step needs is
 * allocated here. NULL with nb_last_error() set. */
nb__diag *nb__diag_new(nb_model *m, nb_node *const *layer_out, const char *path, long every, FILE *warn);
/* Whether global step `step` (0-based) is a diagnostic step. */
bool nb__diag_due(const nb__diag *d, long step);
/* On a diagnostic step, after backward and before the optimizer's update:
 * reads the activations and gradients, keeps the weights. */
void nb__diag_before_update(nb__diag *d);
/* After the update: the update ratios, the CSV rows, the warnings. false
 * when writing failed (nb_last_error() set). */
bool nb__diag_after_update(nb__diag *d, long step, int epoch);
/* Flushes and closes the file (atomically in place); false on a failed write. */
bool nb__diag_close(nb__diag *d);
void nb__diag_free(nb__diag *d);

#endif
