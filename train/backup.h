/* train/backup.h — a fit's whole state in one file, to resume from after
 * a crash (Keras's BackupAndRestore). Internal to train/. */
#ifndef NABLA_TRAIN_BACKUP_H
#define NABLA_TRAIN_BACKUP_H

#include <stdint.h>

#include "nabla/train.h"

/* What a fit has done beyond its weights and its optimizer's arrays. */
typedef struct nb_fit_point {
    uint64_t seed;            /* checked on restore, with batch and n */
    int batch, n;
    int epochs_done;
    long step_count;          /* optimizer steps, the schedule's t */
    uint64_t graph_step;      /* the graph's forward passes: its random stream */
    long opt_steps;
    double nadam_product;
    float lr, momentum;       /* the optimizer's, as the schedule left them */
    double best;              /* early stopping: the best monitored value */
    int wait;
    float sched_lr;           /* the performance schedule's state */
    double sched_best;
    int sched_wait;
} nb_fit_point;

/* Writes m's tensors, opt's arrays, best (best_floats floats, or NULL),
 * the history so far and *p to path, atomically. false with nb_last_error
 * set on failure. */
bool nb__backup_write(const char *path, nb_model *m, nb_optimizer *opt, const float *best, size_t best_floats,
                      const nb_history *h, const nb_fit_point *p);

/* Reads what nb__backup_write wrote into m, opt, best, h (whose epochs
 * array has room for `room` epochs) and *p, after checking that the
 * backup's seed, batch and n are p's. false with nb_last_error set (and
 * the state then partly restored: the caller gives up). */
bool nb__backup_read(const char *path, nb_model *m, nb_optimizer *opt, float *best, size_t best_floats,
                     nb_history *h, int room, nb_fit_point *p);

#endif
