/* nabla/optim.h — optimizers, gradient clipping and learning-rate schedules.
 *
 * An optimizer sees parameters and their gradients only: it updates each
 * tensor's data from its grad (as left by nb_backward) and keeps its own
 * state (velocities, moment estimates) per tensor. Frozen tensors
 * (trainable == false) are skipped. Defaults and formulas follow Keras
 * (keras.optimizers, Keras 3); each kind's update is stated below, with
 * g the gradient after clipping, t the 1-based step count, lr the current
 * learning rate and eps epsilon.
 */
#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#include <stdbool.h>

#include "graph.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nb_optimizer_kind {
    NB_SGD,       /* w -= lr·g                                                   (lr 0.01) */
    NB_MOMENTUM,  /* v = momentum·v - lr·g;  w += v                  (lr 0.01, momentum 0.9) */
    NB_NESTEROV,  /* v = momentum·v - lr·g;  w += momentum·v - lr·g  (lr 0.01, momentum 0.9) */
    NB_ADAGRAD,   /* a += g²;  w -= lr·g / sqrt(a + eps)    (eps inside the root, as Keras)
                     (lr 0.001, a starts at initial_accumulator 0.1, eps 1e-7) */
    NB_RMSPROP,   /* s = rho·s + (1-rho)·g²;  w -= lr·g / sqrt(s + eps)  (eps inside the root)
                     (lr 0.001, rho 0.9, eps 1e-7; Keras's momentum=0, centered=False) */
    NB_ADAM,      /* m = b1·m + (1-b1)·g;  v = b2·v + (1-b2)·g²;
                     w -= lr·sqrt(1-b2^t)/(1-b1^t) · m / (sqrt(v) + eps)
                     (lr 0.001, b1 0.9, b2 0.999, eps 1e-7; amsgrad off) */
    NB_ADAMAX,    /* m = b1·m + (1-b1)·g;  u = max(b2·u, |g|);
                     w -= lr·m / ((1-b1^t)·(u + eps))  (lr 0.001, b1 0.9, b2 0.999, eps 1e-7) */
    NB_NADAM,     /* Keras's Nadam (Dozat 2016) with its momentum schedule:
                     mu_t = b1·(1 - 0.5·0.96^t), P_t = mu_1·...·mu_t (each mu_i with the
                     b1 of step i, so a b1 changed by set_momentum applies from then on);
                     m = b1·m + (1-b1)·g;  v = b2·v + (1-b2)·g²;
                     w -= lr · (mu_{t+1}·m/(1-P_{t+1}) + (1-mu_t)·g/(1-P_t))
                              / (sqrt(v/(1-b2^t)) + eps)
                     (lr 0.001, b1 0.9, b2 0.999, eps 1e-7) */
    NB_ADAMW      /* w -= lr·weight_decay·w, then the Adam update on the decayed w
                     (Loshchilov & Hutter; lr 0.001, weight_decay 0.004, Adam's others) */
} nb_optimizer_kind;

typedef struct nb_optimizer_config {
    nb_optimizer_kind kind;
    float lr;
    float momentum;            /* MOMENTUM, NESTEROV */
    float rho;                 /* RMSPROP */
    float beta1, beta2;        /* ADAM, ADAMAX, NADAM, ADAMW */
    float epsilon;             /* ADAGRAD, RMSPROP and the Adam family; 1e-7 */
    float initial_accumulator; /* ADAGRAD; 0.1 */
    /* Keras's weight_decay, decoupled: when > 0, every updated tensor first
     * gets w -= lr·weight_decay·w (after clipping, before the kind's update).
     * 0.004 for ADAMW, 0 (off) for the other kinds, which may set it too. */
    float weight_decay;
    /* Clipping before the update, as Keras's clipvalue, clipnorm and
     * global_clipnorm (see nb_clip_* below), over the tensors the step
     * updates; 0 means off. At most one may be set. */
    float clip_value, clip_norm, clip_global_norm;
} nb_optimizer_config;

typedef struct nb_optimizer nb_optimizer; /* opaque */

/* The Keras defaults for kind (values above), clipping off; the fields
 * kind does not use are 0. An unknown kind gives SGD's defaults. */
nb_optimizer_config nb_optimizer_defaults(nb_optimizer_kind kind);

/* "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamax",
 * "nadam", "adamw"; nb_optimizer_name gives "unknown" for a kind outside the
 * enum. nb_optimizer_parse ignores case and returns false (leaving *kind
 * alone) for an unknown or NULL name; kind may be NULL to test a name. */
const char *nb_optimizer_name(nb_optimizer_kind kind);
bool nb_optimizer_parse(const char *name, nb_optimizer_kind *kind);

/* Makes an optimizer for the n tensors (borrowed: they must outlive it),
 * with zeroed state (AdaGrad's accumulators at initial_accumulator); the
 * state for all tensors is one 64-byte aligned block. Only the fields the
 * kind uses are checked. Returns NULL with nb_last_error() set for a NULL
 * config, an unknown kind, a bad config (lr <= 0 or not finite,
 * momentum/rho/beta outside [0,1), eps <= 0 or not finite, negative
 * initial_accumulator, negative or non-finite weight decay, more than one
 * clipping mode, negative or non-finite clipping), n < 0, params NULL with
 * n > 0, a NULL or repeated tensor, or no memory. The kind
 * (nb_last_error_kind) is NB_ERR_OUT_OF_MEMORY for no memory, else
 * NB_ERR_INVALID_ARGUMENT (a NaN setting included). The caller frees it with
 * nb_optimizer_free (NULL is allowed). */
nb_optimizer *nb_optimizer_new(const nb_optimizer_config *cfg, int n, nb_tensor *const *params);
void nb_optimizer_free(nb_optimizer *o);

/* Clips the gradients (in place) as configured, then updates every
 * trainable tensor that has a gradient, and counts one step (t above is
 * the count including this step). Tensors that are frozen or have no
 * gradient keep their data and state and take no part in clipping.
 * Elementwise work is in float, per-step factors (bias corrections) in
 * double. Allocates nothing. NULL does nothing. */
void nb_optimizer_step(nb_optimizer *o);

/* Zeroes the state and the step count (same tensors, same config). */
void nb_optimizer_reset(nb_optimizer *o);

/* The learning rate, changed by schedules between steps. set_lr ignores a
 * rate that is negative or not finite (setting nb_last_error()); 0 is
 * allowed and freezes the weights (AdamW's decay included). */
float nb_optimizer_lr(const nb_optimizer *o);
void nb_optimizer_set_lr(nb_optimizer *o, float lr);

/* The momentum-like coefficient 1cycle cycles: momentum for MOMENTUM and
 * NESTEROV, beta1 for the Adam family. has_momentum is false for the
 * others, where nb_optimizer_momentum returns 0 and set_momentum does
 * nothing. set_momentum ignores a value outside [0,1) (setting
 * nb_last_error()). config_of shows the current lr and momentum/beta1. */
bool nb_optimizer_has_momentum(const nb_optimizer *o);
float nb_optimizer_momentum(const nb_optimizer *o);
void nb_optimizer_set_momentum(nb_optimizer *o, float m);

/* Steps taken so far. */
long nb_optimizer_steps(const nb_optimizer *o);
const nb_optimizer_config *nb_optimizer_config_of(const nb_optimizer *o);

/* ---- the optimizer's state: read, set, copy ----
 * For checkpoints (resuming bit-identically), tests and inspection. The
 * state is the step count t, Nadam's running product P_t (a double), and
 * per tensor the kind's arrays, named as in the formulas above:
 *   SGD none; MOMENTUM, NESTEROV "v"; ADAGRAD "a"; RMSPROP "s";
 *   ADAM, ADAMW, NADAM "m" then "v"; ADAMAX "m" then "u".
 * The configuration (lr, momentum, ...) is not state: read it with
 * nb_optimizer_config_of and set lr and momentum with their setters. */
typedef struct nb_optimizer_state_entry {
    const char *name;  /* "m", "v", ... (a static string) */
    nb_tensor *param;  /* the tensor it belongs to (as given to nb_optimizer_new) */
    int param_index;   /* its index in the params given to nb_optimizer_new */
    float *data;       /* size floats owned by the optimizer, valid until it is
                          freed: read them, or write them to set the state */
    size_t size;       /* param->size */
} nb_optimizer_state_entry;

/* How many arrays the state has: the number of tensors times the kind's
 * arrays per tensor (0, 1 or 2); 0 for NULL. Entry i is array i % per of
 * tensor i / per, so a tensor's arrays are next to each other. */
int nb_optimizer_state_count(const nb_optimizer *o);
/* Fills *out for entry i in [0, count). Returns false with nb_last_error()
 * set for a NULL o or out, or i out of range. */
bool nb_optimizer_state(nb_optimizer *o, int i, nb_optimizer_state_entry *out);
/* Nadam's P_t = mu_1·...·mu_t after the steps so far (1 before the first
 * step, and always 1 for other kinds). The step count is nb_optimizer_steps. */
double nb_optimizer_nadam_product(const nb_optimizer *o);
/* Sets the step count (the next step is steps + 1) and, for NADAM, P_t,
 * which must be in (0,1] (ignored for other kinds). Returns false with
 * nb_last_error() set for a NULL o, steps < 0 or a bad product; then
 * nothing changes. */
bool nb_optimizer_set_steps(nb_optimizer *o, long steps, double nadam_product);
/* Copies src's whole state (arrays, steps, P_t) into dst, which must have
 * the same kind and as many tensors of the same sizes (they may be other
 * tensors: a restored model's). The configurations are left alone. Returns
 * false with nb_last_error() set (and dst unchanged) otherwise. */
bool nb_optimizer_copy_state(nb_optimizer *dst, const nb_optimizer *src);

/* ---- gradient clipping (also usable on its own) ----
 * These change the gradients in place. Like the optimizer's step they skip
 * NULL entries, frozen tensors (trainable == false) and tensors without a
 * gradient; params may be NULL when n <= 0. Norms are accumulated in double.
 * A negative or NaN bound clips nothing and sets nb_last_error(). */

/* Clamps every gradient element to [-v, v] (a NaN element stays NaN). */
void nb_clip_by_value(int n, nb_tensor *const *params, float v);
/* Rescales each tensor's gradient whose L2 norm exceeds max to norm max:
 * g·max/||g|| (Keras's clipnorm, g·max/max(||g||, max)); max 0 zeroes
 * every nonzero gradient. */
void nb_clip_by_norm(int n, nb_tensor *const *params, float max);
/* Rescales all gradients together so that the L2 norm of their
 * concatenation is at most max. Returns that norm before clipping (0 when
 * there is nothing to clip, the norm unclipped for a bad max). As Keras's
 * global_clipnorm, a norm that is infinite or NaN turns every gradient
 * into NaN, unless max is +inf (which clips nothing: a way to get the norm). */
double nb_clip_by_global_norm(int n, nb_tensor *const *params, float max);

/* ---- learning-rate schedules ----
 * A schedule maps t (a step or an epoch count, as the caller decides; a
 * negative t counts as 0) to a learning rate. Formulas (lr0 the initial
 * rate), after Géron's Hands-On ML, ch. 11:
 *   CONSTANT     lr0
 *   POWER        lr0 / (1 + t/steps)^power                  (the book's c is power)
 *                Defaults: steps 1, power 1 (Keras's InverseTimeDecay with
 *                decay_rate 1 when power is 1).
 *   EXPONENTIAL  lr0 · 0.1^(t/steps)                         Default: steps 1.
 *   PIECEWISE    values[i] for boundaries[i-1] <= t < boundaries[i]
 *                (values has n_boundaries+1 entries, boundaries increase;
 *                values[0] before boundaries[0], values[n_boundaries] from
 *                the last boundary on). The rate changes AT a boundary, as
 *                in the book; Keras's PiecewiseConstantDecay changes just
 *                after it (t > boundary). No defaults: set n_boundaries,
 *                boundaries and values.
 *   PERFORMANCE  reduce on plateau: lr starts at lr0; after `patience`
 *                observations without an improvement of more than min_delta
 *                on the monitored value (lower is better), lr = max(lr·factor,
 *                min_lr) and the count restarts. Keras's ReduceLROnPlateau
 *                in mode "min" with cooldown 0: an observation improves when
 *                value < best - min_delta (best starts at +inf, so the first
 *                finite value always does; NaN never does); patience 0
 *                reduces on every observation that does not improve; once
 *                lr <= min_lr nothing more happens. Defaults: factor 0.5,
 *                patience 5, min_delta 1e-4, min_lr 0 (the book's values;
 *                Keras's are 0.1 and 10).
 *   ONECYCLE     Smith's 1cycle over T = total_steps, with lo = max_lr/div_factor,
 *                end = lo/final_div_factor, c = (1-final_fraction)·T (the cycle's
 *                end) and r = pct_start·T (the rise's end; pct_start 0 means
 *                half the cycle, r = c/2):
 *                  t < r       lr = lo + (max_lr - lo)·t/r              (rise)
 *                  r <= t < c  lr = max_lr - (max_lr - lo)·(t-r)/(c-r)  (fall)
 *                  c <= t < T  lr = from + (end - from)·(t-c)/(T-c)     (annihilation)
 *                  t >= T      lr = end
 *                with from = lo, or max_lr when r = c (no fall). With
 *                final_fraction 0 there is no annihilation and lr stays at
 *                `from` after c. Momentum goes linearly from max_momentum
 *                down to min_momentum over the rise and back up over the
 *                fall, and stays at max_momentum during the annihilation
 *                and after; when r = c it climbs from min to max over the
 *                annihilation instead. Phase ends are real numbers (no
 *                rounding to whole steps). Defaults: div_factor 10,
 *                final_fraction 0.1, pct_start 0 (= (1-final_fraction)/2),
 *                final_div_factor 0 (= 1000), momentum 0.95 to 0.85;
 *                total_steps has none (0: set it).
 *                PyTorch's OneCycleLR(anneal_strategy="linear") is pct_start
 *                with final_fraction = 1 - pct_start (two phases; three_phase
 *                is final_fraction = 1 - 2·pct_start), its div_factor and
 *                final_div_factor, base/max_momentum our min/max_momentum;
 *                PyTorch ends its phases one step earlier (at r - 1 and
 *                T - 1: it counts the steps taken, from 0), and its defaults
 *                are pct_start 0.3, div_factor 25, final_div_factor 1e4. */
typedef enum nb_schedule_kind {
    NB_SCHEDULE_CONSTANT,
    NB_SCHEDULE_POWER,
    NB_SCHEDULE_EXPONENTIAL,
    NB_SCHEDULE_PIECEWISE,
    NB_SCHEDULE_PERFORMANCE,
    NB_SCHEDULE_ONECYCLE
} nb_schedule_kind;

#define NB_SCHEDULE_MAX_PIECES 16

typedef struct nb_schedule_config {
    nb_schedule_kind kind;
    float lr0;                       /* CONSTANT, POWER, EXPONENTIAL, PERFORMANCE */
    float steps, power;              /* POWER (steps 1, power 1), EXPONENTIAL (steps 1) */
    int n_boundaries;                /* PIECEWISE */
    float boundaries[NB_SCHEDULE_MAX_PIECES];
    float values[NB_SCHEDULE_MAX_PIECES + 1];
    float factor, min_lr, min_delta; /* PERFORMANCE: 0.5, 0, 1e-4 */
    int patience;                    /* PERFORMANCE: 5 */
    long total_steps;                /* ONECYCLE: no default */
    float max_lr, div_factor, final_fraction, min_momentum, max_momentum; /* ONECYCLE */
    float pct_start, final_div_factor; /* ONECYCLE, after PyTorch's OneCycleLR: 0 = the defaults */
} nb_schedule_config;

typedef struct nb_schedule nb_schedule; /* opaque */

/* Defaults for kind (above) with lr0 and max_lr set to lr. Every field gets
 * its default whatever the kind; n_boundaries and total_steps are 0 and
 * must be set for PIECEWISE and ONECYCLE. */
nb_schedule_config nb_schedule_defaults(nb_schedule_kind kind, float lr);
/* "constant", "power", "exponential", "piecewise", "performance", "1cycle"
 * ("unknown" for a kind out of range); nb_schedule_parse returns false for
 * an unknown or NULL name and leaves *kind alone. */
const char *nb_schedule_name(nb_schedule_kind kind);
bool nb_schedule_parse(const char *name, nb_schedule_kind *kind);

/* Makes a schedule (the config is copied). Returns NULL with
 * nb_last_error() set for a NULL config, a kind out of range, or a bad
 * value in a field the kind uses: a rate (lr0, max_lr, values[i]), steps or
 * power <= 0 or not finite; n_boundaries outside [1, NB_SCHEDULE_MAX_PIECES];
 * boundaries not finite or not strictly increasing; factor outside (0,1);
 * patience < 0; min_lr or min_delta < 0; total_steps < 1; div_factor < 1;
 * final_fraction, min_momentum or max_momentum outside [0,1); pct_start
 * not 0 and outside (0, 1 - final_fraction]; final_div_factor not 0 and
 * below 1 or not finite;
 * min_momentum > max_momentum (NB_ERR_INVALID_ARGUMENT); or no memory
 * (NB_ERR_OUT_OF_MEMORY). Fields the kind does not use are not checked.
 * Free with nb_schedule_free (NULL is fine). */
nb_schedule *nb_schedule_new(const nb_schedule_config *cfg);
void nb_schedule_free(nb_schedule *s);

/* The learning rate at t (0 for a NULL schedule). PERFORMANCE ignores t
 * (its rate moves only with nb_schedule_observe). Allocates nothing. */
float nb_schedule_lr(const nb_schedule *s, double t);
/* The momentum at t for ONECYCLE; for other kinds, returns base unchanged. */
float nb_schedule_momentum(const nb_schedule *s, double t, float base);
/* The state PERFORMANCE keeps between epochs (its current rate, the best
 * value seen, Keras's wait), to save and restore with a training's state;
 * other kinds keep none (get gives lr 0, best 0, wait 0; set does
 * nothing). NULL s or pointers are ignored. */
void nb_schedule_get_state(const nb_schedule *s, float *lr, double *best, int *wait);
void nb_schedule_set_state(nb_schedule *s, float lr, double best, int wait);
/* PERFORMANCE: reports the monitored value at the end of an epoch; returns
 * true if the rate was reduced. Other kinds ignore it and return false. */
bool nb_schedule_observe(nb_schedule *s, double value);

#ifdef __cplusplus
}
#endif
#endif
