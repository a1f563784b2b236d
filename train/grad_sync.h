/* train/grad_sync.h — the gradients' sums over processes for fit
 * (nb_fit_dist): buckets of gradients in the order backward completes
 * them, each summed as one call, and with the dist's start/progress/wait
 * calls started from the graph's grad-ready hook while backward goes on.
 * Internal to train/. */
#ifndef NABLA_TRAIN_GRAD_SYNC_H
#define NABLA_TRAIN_GRAD_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "nabla/train.h"

typedef struct nb__grad_sync nb__grad_sync;

/* Plans the buckets over the trainable tensors that backward from loss
 * reaches and hooks g (nb_graph_on_grad_ready). Everything a step needs is
 * allocated here. NULL with nb_last_error() set. */
nb__grad_sync *nb__grad_sync_new(const nb_fit_dist *d, nb_graph *g, nb_node *loss);

/* Plans again if the tensors backward reaches have changed (a layer
 * frozen or unfrozen): call it between steps, on every process alike.
 * false with nb_last_error() set when out of memory. */
bool nb__grad_sync_refresh(nb__grad_sync *s);

/* A hash of the plan: the number of buckets and each one's length, in
 * order, which is what the processes' sums must agree on. fit compares it
 * between processes after each refresh. */
uint64_t nb__grad_sync_plan_hash(const nb__grad_sync *s);

/* Before a step's backward: this process's gradients are of its share's
 * mean loss, weighted by weight (its rows over the batch's) in the sum; 0
 * for a process without rows, which adds zeros. */
void nb__grad_sync_begin(nb__grad_sync *s, float weight);

/* After the step's backward, on every process whether its backward ran,
 * failed or was skipped: starts the buckets not started yet, waits for
 * every sum and writes the sums into the gradients. false with
 * nb_last_error() set when a sum failed. */
bool nb__grad_sync_end(nb__grad_sync *s);

/* Unhooks the graph and frees s. NULL is allowed. */
void nb__grad_sync_free(nb__grad_sync *s);

#endif
