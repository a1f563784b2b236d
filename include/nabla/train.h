/* nabla/train.h — the training loop: fit, evaluate and MC-dropout prediction
 * for Sequential classifiers, with Keras's progress display, early stopping,
 * checkpoints, schedules and a history.
 *
 * fit composes the other parts: it builds one graph for the model
 * (softmax cross-entropy on integer labels plus the layers' penalties;
 * when the model's last op is a softmax, the loss is computed from its
 * input, as Keras's from_logits=False, so a softmax output layer trains as
 * well as plain logits),
 * feeds it shuffled batches (a last, smaller batch included) without
 * rebuilding, steps an optimizer, applies max-norm constraints and the
 * schedule, and evaluates on validation data after each epoch.
 */
#ifndef NABLA_TRAIN_H
#define NABLA_TRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "data.h"
#include "nn.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The loss fit minimizes, on the model's (single) output. Every loss is
 * averaged over the batch; the metric fit reports beside it (nb_history's
 * `metric` names it) is given with each kind.
 *   SPARSE_CATEGORICAL: softmax cross-entropy of logits [B,C] against
 *     integer class labels y (Keras's SparseCategoricalCrossentropy(from_
 *     logits=True)); metric "accuracy", argmax against the label.
 *   BINARY: binary cross-entropy of logits against targets in [0,1]
 *     (BinaryCrossentropy(from_logits=True)); metric "accuracy", the
 *     fraction of outputs on the target's side of 0 (probability 0.5).
 *   MSE, MAE, HUBER: mean squared error, mean absolute error, Huber loss
 *     (delta huber_delta, 1 if 0) of the outputs against the targets;
 *     metric "mae".
 * Targets: the label y of each example, for an output of one value per
 * example (or C class scores for SPARSE_CATEGORICAL); with target_is_input,
 * the example's own input (an autoencoder: the output must have as many
 * values as the input). A softmax (SPARSE_CATEGORICAL) or sigmoid
 * (BINARY) as the model's last op is recognized and the loss computed from
 * its input, as Keras's from_logits=False does, stably. */
typedef enum nb_loss_kind {
    NB_LOSS_SPARSE_CATEGORICAL = 0,
    NB_LOSS_BINARY,
    NB_LOSS_MSE,
    NB_LOSS_MAE,
    NB_LOSS_HUBER
} nb_loss_kind;

typedef struct nb_loss_config {
    nb_loss_kind kind;
    bool target_is_input;
    float huber_delta;
} nb_loss_config;

/* A model of several outputs has a loss for each (by default the fit
 * options' `loss` for every one, weight 1), and fit minimizes their
 * weighted sum, as Keras's loss_weights. */
/* The metric reported beside an output's loss (Keras's names). */
typedef enum nb_metric_kind {
    NB_METRIC_DEFAULT = 0,   /* the loss's: accuracy for SPARSE_CATEGORICAL and BINARY, mae otherwise */
    NB_METRIC_ACCURACY,      /* "accuracy": argmax against the label (SPARSE_CATEGORICAL only) */
    NB_METRIC_BINARY_ACCURACY, /* "binary_accuracy": outputs on the target's side of 0
                                  (of logits: probability 1/2) */
    NB_METRIC_MSE,           /* "mse", per value of the output */
    NB_METRIC_MAE            /* "mae" */
} nb_metric_kind;

typedef struct nb_output_loss {
    const char *output;   /* the output's name (nb_model_output_name); NULL: the i-th
                             output for the i-th entry */
    nb_loss_config loss;  /* target_is_input: the target is the model's first input */
    float weight;         /* >= 0, finite; 0 means 1 unless ignore is set */
    bool ignore;          /* no loss on this output (weight 0) */
    nb_metric_kind metric; /* the metric for BINARY_ACCURACY, MSE and MAE need
                              targets shaped as the output (not class labels) */
} nb_output_loss;

/* ---- Data of several inputs and targets ----
 * n examples: for each model input an array of n rows (its features,
 * flattened), and for each output with a loss its target rows: one class
 * index per example (SPARSE_CATEGORICAL), or as many values as the output
 * gives per example (a single target value for a one-unit output). Arrays
 * are matched to the model's inputs and outputs by name, or by position
 * when every name is NULL. The arrays are borrowed, not copied. */
typedef struct nb_array {
    const char *name;
    const float *data; /* n × dim floats, row-major */
    int dim;
} nb_array;

typedef struct nb_data {
    int n;
    int n_inputs;
    const nb_array *inputs;
    int n_targets;
    const nb_array *targets;
} nb_data;

/* What one epoch measured. Losses include the regularization penalty, as
 * Keras's do; `accuracy` holds the loss's metric (see nb_loss_kind: the
 * fraction of correct predictions, or the mean absolute error), of the
 * first output with a loss when there are several. */
typedef struct nb_epoch_metrics {
    int epoch;                  /* 1-based */
    double loss, accuracy;      /* over the epoch's training batches */
    double val_loss, val_accuracy;
    bool has_validation;
    double lr;                  /* at the end of the epoch */
    double seconds;             /* wall time of the epoch's training steps */
    double step_seconds;        /* seconds / steps */
    /* each output's own loss (unweighted, without the penalty) and metric,
     * in the model's output order (zero for outputs without a loss) */
    int n_outputs;
    double output_loss[NB_MODEL_MAX_IO], output_metric[NB_MODEL_MAX_IO];
    double val_output_loss[NB_MODEL_MAX_IO], val_output_metric[NB_MODEL_MAX_IO];
} nb_epoch_metrics;

/* Called after each epoch; return false to stop training. */
typedef bool (*nb_epoch_callback)(const nb_epoch_metrics *metrics, void *user);

/* What early stopping, checkpoints and the best epoch watch. Without
 * validation data the val_ kinds watch the training metric instead. */
typedef enum nb_monitor {
    NB_MONITOR_VAL_LOSS = 0, /* lower is better (the default, as Keras) */
    NB_MONITOR_VAL_ACCURACY, /* higher is better; the metric "mae" (regression
                                losses) cannot be watched this way */
    NB_MONITOR_LOSS,
    NB_MONITOR_ACCURACY
} nb_monitor;

/* Data parallelism: fit on `size` processes at once, each on its share of
 * every batch, the same weights on all (nabla/dist.h makes one over MPI;
 * the core library knows nothing of MPI). Each global batch of
 * batch_size examples is split by rank into contiguous shares; every
 * process runs forward and backward on its share, the gradients are
 * averaged over the processes (weighted by share, so the result is the
 * gradient of the whole batch's mean loss), and every process takes the
 * same optimizer step. The shuffle is the same everywhere; validation is
 * shared out and its sums added. Only rank 0 prints, writes checkpoints,
 * backups and diagnostics; every process returns the same history. A
 * failure on one process stops all of them at the same step, with a
 * message naming the rank. Batch normalization uses each process's own
 * share's statistics (PyTorch DDP's default, which also takes rank 0's
 * moving statistics everywhere after each step), or with sync_batchnorm those
 * of the whole global batch (one sum of per-feature sums forward, one
 * backward), so that N processes compute what one computes with the same
 * global batch, up to the order of floating-point sums. Dropout and RReLU
 * draw for each row what one process draws for it (nb_graph_set_row_offset). */
typedef struct nb_fit_dist {
    int rank, size;         /* 0 <= rank < size */
    void *user;
    /* v[0..n) summed over the processes, in place, the same on every one */
    nb_status (*sum)(void *user, double *v, int n);
    /* the same for floats (the gradients) */
    nb_status (*sum_floats)(void *user, float *v, size_t n);
    bool check_weights;     /* after every epoch, check that the weights are the same bits
                               on every process (a debug mode: costs one hash of them) */
    bool sync_batchnorm;    /* batch statistics of the global batch (PyTorch's SyncBatchNorm);
                               every process must get rows of every batch: refused when the
                               last batch has fewer examples than there are processes */
    /* Optional (all three or none): sums that overlap with backward, as
     * PyTorch DDP's and Horovod's. The gradients are summed in buckets of
     * about bucket_bytes, in the order backward completes them; with these,
     * each bucket's sum starts as soon as backward has completed it.
     * start_sum_floats starts summing v[0..n) in place and returns at once;
     * progress is called between backward's ops, to let started sums move
     * on; wait_sums returns once every started sum is done. fit starts the
     * sums in the same order on every process and reads no v before
     * wait_sums. Without them, each bucket is summed with sum_floats once
     * backward is done. */
    nb_status (*start_sum_floats)(void *user, float *v, size_t n);
    void (*progress)(void *user);
    nb_status (*wait_sums)(void *user);
    size_t bucket_bytes;    /* 0: 256 KiB */
} nb_fit_dist;

typedef struct nb_fit_opts {
    int epochs;                    /* >= 1 */
    int batch_size;                /* >= 1; 32 if 0 */
    uint64_t seed;                 /* the shuffle of every epoch and the dropout masks */
    const nb_dataset *validation;  /* or NULL: see validation_split */
    float validation_split;        /* without a validation set: the last fraction of
                                      train (before any shuffle, as Keras) is held out */
    nb_optimizer_config optimizer;
    bool use_schedule;
    nb_schedule_config schedule;   /* lr of the optimizer set each step from it */
    bool schedule_per_epoch;       /* t counts epochs instead of steps */
    nb_monitor monitor;            /* for early stopping, checkpoints and best_epoch */
    int patience;                  /* early stopping: stop after patience epochs without
                                      improvement of the monitored metric; 0 = off */
    bool restore_best;             /* with early stopping: end with the best epoch's weights */
    const char *checkpoint;        /* if set, the model is saved there at every new best
                                      (the performance schedule always watches the loss:
                                      val_loss, or loss without validation) */
    const char *backup;            /* if set, the whole training state (weights, optimizer
                                      arrays and steps, epoch, random stream, schedule,
                                      early stopping, best weights, history) is written
                                      there atomically after every epoch, and a fit that
                                      finds the file resumes from it: a run killed and
                                      started again ends with the same bits as one never
                                      stopped (Keras's BackupAndRestore). Removed when fit
                                      ends; refused if made with another seed, batch size
                                      or training set size. */
    nb_epoch_callback on_epoch;
    void *user;
    nb_loss_config loss;           /* zeroed: softmax cross-entropy on integer labels */
    int n_losses;                  /* per output (nb_output_loss), or 0: `loss` on every
                                      output, weight 1 */
    const nb_output_loss *losses;
    const nb_data *validation_data; /* nb_fit_data's validation set, or NULL (see
                                      validation_split) */
    const char *diagnose;          /* if set, gradient-health diagnostics are written there
                                      as CSV: step, epoch, layer, name, act_mean, act_std,
                                      saturated (fraction of sigmoid/tanh outputs within 1%
                                      of their range's ends), dead (fraction of ReLU units 0
                                      for the whole batch), grad_norm (L2 of the layer's
                                      trainable tensors' gradient) and update_ratio
                                      (||dw||/||w|| of the step's update), per layer, from the
                                      training step's own values (no extra pass); with
                                      verbose, warnings of vanishing (first layer's gradient
                                      norm < 1e-3 of the last's), exploding (a norm > 1e3
                                      times its step-0 value) gradients and dying ReLUs (over
                                      half a layer's units dead), once per epoch each */
    long diagnose_every;           /* steps between diagnostics (step 0 always); 0 = once
                                      per epoch, at its first step */
    const nb_fit_dist *dist;       /* data-parallel training over processes, or NULL */
    bool allow_nonfinite;          /* go on through a loss that is NaN or infinite; by
                                      default fit stops at the first (see nb_fit) */
    int verbose;                   /* 0 silent; 1 Keras's progress bar, redrawn on a
                                      terminal, per-epoch lines otherwise */
    FILE *out;                     /* stdout if NULL */
} nb_fit_opts;

/* Sensible defaults: 1 epoch, batch 32, SGD(0.01), verbose 1. */
nb_fit_opts nb_fit_defaults(void);

typedef struct nb_history {
    const char *metric;            /* "accuracy" or "mae" (static: do not free) */
    int n_outputs;                 /* the model's outputs, for the epochs' per-output values */
    char output_names[NB_MODEL_MAX_IO][48];
    const char *output_metric[NB_MODEL_MAX_IO]; /* NULL for an output without a loss */
    int n_epochs;
    nb_epoch_metrics *epochs;      /* n_epochs entries, owned */
    int best_epoch;                /* 1-based, by the monitored metric */
    double train_seconds;          /* all epochs' training steps */
    double samples_per_second;     /* training samples / train_seconds */
    bool stopped_early;
    bool diverged;                 /* stopped at a non-finite loss (see nb_fit) */
    int diverged_epoch;            /* 1-based, when diverged */
    long diverged_step;            /* 1-based within that epoch; 0: its validation */
} nb_history;

/* Trains m on train (its dim must equal the product of the model's input
 * dims, its labels classes in [0, output units)). h may be NULL; otherwise
 * the caller frees it with nb_history_free. Errors (nb_last_error): bad
 * options, mismatched data, a graph error, a failed checkpoint, and a
 * divergence: unless allow_nonfinite is set, a training or validation loss
 * that is NaN or infinite stops training at once with NB_ERROR and a
 * message that names the epoch and step and where the first non-finite
 * value is: a weight tensor the last update made non-finite, or else the
 * first node of the step's forward pass whose output is (found by running
 * that pass again with nb_graph_check_finite). The model then holds the
 * weights of that step, and h the epochs completed before it, with
 * diverged set (on other errors h is empty); free h either way. */
nb_status nb_fit(nb_model *m, const nb_dataset *train, const nb_fit_opts *opts, nb_history *h);
/* nb_fit for any model: inputs and targets as nb_data, a loss per output
 * (opts->losses), validation from opts->validation_data or the last
 * validation_split of train. Errors as nb_fit's, and: an input or output
 * with no array, an array of the wrong size or one matching nothing, a
 * loss naming no output, a negative or non-finite weight, every weight 0. */
nb_status nb_fit_data(nb_model *m, const nb_data *train, const nb_fit_opts *opts, nb_history *h);
void nb_history_free(nb_history *h);

/* The mean of every loss (the weighted total with the penalty in loss,
 * each output's in output_loss) and metric of m over d, in inference
 * mode, with opts's losses and batch size (NULL: defaults). Fills *out
 * (epoch 0). Errors: as nb_fit_data's. */
nb_status nb_evaluate_data(nb_model *m, const nb_data *d, const nb_fit_opts *opts, nb_epoch_metrics *out);
/* Every output of m for the inputs of d (its targets are not needed), in
 * inference mode, batch_size at a time (32 if < 1): out[k] holds d->n ×
 * (output k's size) floats for output k, in the model's output order.
 * Errors as nb_predict's. */
nb_status nb_predict_data(nb_model *m, const nb_data *d, int batch_size, float *const *out);

/* Mean loss (with penalty) and accuracy of m on d in inference mode, with
 * softmax cross-entropy on integer labels. */
nb_status nb_evaluate(nb_model *m, const nb_dataset *d, int batch_size, double *loss, double *accuracy);

/* The same for any loss (NULL: softmax cross-entropy): its mean and its
 * metric (see nb_loss_kind). Errors: as nb_fit's for data and model. */
nb_status nb_evaluate_loss(nb_model *m, const nb_dataset *d, int batch_size, const nb_loss_config *loss,
                           double *mean_loss, double *metric);

/* The model's outputs for every example of d (its labels are not needed),
 * in inference mode, batch_size at a time (32 if < 1): out holds d->n ×
 * (the product of nb_model_output_dims) floats, example after example, as
 * the last layer gives them (probabilities after a softmax layer, logits
 * without one). Errors: NULL arguments, an empty dataset, a feature count
 * that is not the model's input size, a graph error. */
nb_status nb_predict(nb_model *m, const nb_dataset *d, int batch_size, float *out);

/* MC dropout (Gal & Ghahramani 2016): runs `samples` stochastic inference
 * passes with dropout kept on and returns, for each example, the mean and
 * the standard deviation of the predicted class probabilities
 * (mean_probs, std_probs: n x classes floats, either may be NULL), and the
 * accuracy of the mean prediction. */
nb_status nb_predict_mc(nb_model *m, const nb_dataset *d, int batch_size, int samples, uint64_t seed,
                        float *mean_probs, float *std_probs, double *accuracy);

/* ---- Custom training loops ----
 * A trainer is what fit builds, for a loop of your own: the model's graph
 * over batches of at most opts->batch_size with its losses (opts->losses or
 * opts->loss) and penalties, the optimizer (opts->optimizer) and, with
 * use_schedule, the schedule stepped once per nb_train_step; dropout keyed
 * by opts->seed. Built once: a step allocates nothing.
 *
 *   nb_trainer *t = nb_trainer_new(m, &batch, &opts);
 *   for (...) { fill batch; nb_train_step(t, &batch, &loss); }
 *   nb_trainer_free(t);
 *
 * With opts->dist (processes, as nb_fit takes them: nb_dist_fit), every
 * process builds its trainer and steps together, each feeding its share
 * of the global batch (0 to batch_size rows). The shares are laid end to
 * end in rank order and the gradients summed weighted by rows, so every
 * process takes the step one process takes on the whole batch; *loss is
 * the global batch's. Dropout and RReLU draw for each row what one process
 * draws for it; batch norm uses each share's statistics and rank 0's
 * moving ones, or with sync_batchnorm the global batch's (every process
 * then needs rows). Building and stepping are decisions of all: a failure
 * on one process (or models that differ at the start) fails every one,
 * naming it, and none waits.
 */
typedef struct nb_trainer nb_trainer; /* opaque */

/* layout: arrays as the batches will have them (names, order and sizes;
 * their data may be NULL and n anything). The model must outlive the
 * trainer. The caller frees it with nb_trainer_free. NULL with
 * nb_last_error(): as nb_fit_data's for the model, losses and arrays. */
nb_trainer *nb_trainer_new(nb_model *m, const nb_data *layout, const nb_fit_opts *opts);
/* One step on batch (1 to batch_size examples, laid out as the layout; 0
 * to batch_size with processes):
 * forward, backward, the optimizer's update and the max-norm constraints;
 * *loss (may be NULL) gets the batch's loss with the penalty. Errors: a
 * batch of another layout or size, a graph error, a non-finite loss
 * (unless allow_nonfinite): the weights are then not updated. */
nb_status nb_train_step(nb_trainer *t, const nb_data *batch, double *loss);
/* The trainer's optimizer (to read or set its rate and state), and the
 * steps taken. */
nb_optimizer *nb_trainer_optimizer(nb_trainer *t);
long nb_trainer_steps(const nb_trainer *t);
void nb_trainer_free(nb_trainer *t);

/* Writes one CSV row per epoch: epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds
 * (atomically, like a model save); "accuracy" is the history's metric's
 * name ("mae" for regression losses). A model of several outputs adds, for
 * each output with a loss, NAME_loss,NAME_METRIC,val_NAME_loss,val_NAME_METRIC
 * (Keras's names: main_loss, main_accuracy, ...). */
nb_status nb_history_write_csv(const nb_history *h, const char *path);

/* Draws the learning curves (loss and accuracy, training and validation,
 * per epoch) with gnuplot into path, PNG or SVG by its extension. gnuplot
 * (from $PATH, run without a shell) draws to a pipe and nabla writes the
 * file atomically, like a model save: the name never enters gnuplot's
 * script, so any name is safe, newlines and quotes included. Non-finite
 * values leave gaps in the curves. Errors: gnuplot missing or failing,
 * another extension, a failed write. */
nb_status nb_history_plot(const nb_history *h, const char *path);

/* Draws a diagnostics CSV written by fit (nb_fit_opts's diagnose) into
 * path, PNG or SVG, as nb_history_plot does: against the layer's depth, one
 * curve per diagnostic step (at most 8, spread over training), the
 * gradient norm on a log scale (a vanishing gradient is a falling line)
 * and the activations' standard deviation. Errors: a file that is not
 * fit's diagnostics (the line is named), and nb_history_plot's. */
nb_status nb_diagnostics_plot(const char *csv, const char *path);

/* ---- Learning-rate finder ----
 * Smith's range test ("Cyclical Learning Rates", 2017), as Géron's
 * Hands-On ML (ch. 11) and fast.ai's lr_find run it: train a copy of the
 * model for T steps with the rate growing exponentially,
 *     lr_t = lr_min · (lr_max / lr_min)^(t / (T - 1)),   t = 0 .. T-1,
 * record each step's batch loss and its smoothed value (fast.ai's
 * debiased exponential average: a_t = β·a_{t-1} + (1-β)·loss_t,
 * smoothed_t = a_t / (1 - β^(t+1))), and stop early once the loss has
 * diverged: smoothed_t > diverge · min(smoothed_0..t), or a loss that is
 * not finite (that step is recorded, then the run ends).
 * The suggestion: the rate at the minimum of the smoothed loss divided by
 * 10, the book's "about 10 times lower than the point where the loss
 * starts to climb" (fast.ai v1's rule "minimum / 10"). The rate of the
 * steepest descent of the smoothed loss against log(lr) (the most negative
 * central difference over T/25 steps, before the minimum) is given beside
 * it: fast.ai's other suggestion.
 * The model passed in is not changed: the test trains a clone
 * (nb_model_clone) through an nb_trainer, so dropout and batch norm run as
 * in fit, and its moving statistics stay those of the original too. */
typedef struct nb_lr_find_opts {
    double lr_min, lr_max; /* 0 < lr_min < lr_max, finite (defaults 1e-5 and 10) */
    long steps;            /* T >= 2, or 0 for one epoch: ceil(n / batch size) steps */
    double smoothing;      /* β in [0, 1) (0.98; 0 smooths nothing) */
    double diverge;        /* > 1 (4): the stop when the loss passes this times its best */
    /* the training setup: optimizer (its lr is ignored), clipping, batch
     * size, seed (shuffle and dropout), loss; epochs, validation, schedule,
     * early stopping, checkpoints, backups, diagnostics and verbosity are
     * ignored. NULL: nb_fit_defaults() (SGD). Not owned. */
    const nb_fit_opts *fit;
} nb_lr_find_opts;

/* lr_min 1e-5, lr_max 10, steps 0 (one epoch), smoothing 0.98, diverge 4,
 * fit NULL. */
nb_lr_find_opts nb_lr_find_defaults(void);

typedef struct nb_lr_find_result {
    long n;                 /* steps recorded (n <= the steps asked for) */
    long steps;             /* T, the steps asked for (one epoch resolved) */
    double *lr, *loss, *smoothed; /* n each, owned: free with nb_lr_find_result_free */
    bool diverged;          /* stopped early: the loss passed diverge × its best, or was not finite */
    long best;              /* the step of the smallest smoothed loss */
    double min_lr;          /* lr[best] */
    double steepest_lr;     /* the rate of the steepest descent (min_lr when there is none) */
    double suggested_lr;    /* min_lr / 10 */
} nb_lr_find_result;

/* Runs the range test of m on train (as nb_fit takes it: classes in y, or
 * with fit->loss.target_is_input the inputs themselves) and fills *r, which
 * the caller frees with nb_lr_find_result_free (on error *r is left
 * zeroed and needs no free). m is only read. Errors (nb_last_error(),
 * NB_ERR_INVALID_ARGUMENT by nb_last_error_kind): NULL m, train or r;
 * lr_min or lr_max not finite, lr_min <= 0 or lr_min >= lr_max; steps
 * below 2 (also one epoch of a single batch); smoothing outside [0,1);
 * diverge <= 1 or not finite; and nb_trainer_new's and nb_train_step's
 * errors (mismatched data, a graph error); NB_ERR_OUT_OF_MEMORY. A
 * diverging loss is not an error: it is what ends most runs. */
nb_status nb_lr_find(nb_model *m, const nb_dataset *train, const nb_lr_find_opts *opts, nb_lr_find_result *r);
void nb_lr_find_result_free(nb_lr_find_result *r);

/* Writes r as CSV with the header step,lr,loss,smoothed (step from 0),
 * atomically, like a model save. Errors: NULL arguments, an empty result,
 * a failed write (the kind from errno). */
nb_status nb_lr_find_write_csv(const nb_lr_find_result *r, const char *path);

/* Draws the smoothed loss (and the raw loss, lighter) against the rate on
 * a log x axis, the suggestion marked, with gnuplot into path (PNG or SVG
 * by its extension), as nb_history_plot draws: the name never enters
 * gnuplot's script and the file is replaced atomically. Errors: as
 * nb_history_plot's, and an empty result. */
nb_status nb_lr_find_plot(const nb_lr_find_result *r, const char *path);

#ifdef __cplusplus
}
#endif
#endif
