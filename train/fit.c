/* train/fit.c — fit, evaluate and MC-dropout prediction over one replayed graph. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph/internal.h"
#include "nabla/ops.h"
#include "nabla/train.h"
#include "train/backup.h"
#include "train/progress.h"

nb_fit_opts nb_fit_defaults(void) {
    return (nb_fit_opts){.epochs = 1, .batch_size = 32, .optimizer = nb_optimizer_defaults(NB_SGD), .verbose = 1};
}

void nb_history_free(nb_history *h) {
    if (!h) return;
    free(h->epochs);
    memset(h, 0, sizeof *h);
}

/* One graph of the model over batches: inputs, logits, loss, and the
 * buffers a batch is gathered into. */
typedef struct session {
    nb_graph *g;
    nb_node *in, *labels, *logits, *loss; /* labels: the targets' input node */
    nb_loss_config lc;
    int batch, dim, classes; /* classes: outputs per example */
    float *xb, *yb;
} session;

static bool regression(nb_loss_kind k) { return k == NB_LOSS_MSE || k == NB_LOSS_MAE || k == NB_LOSS_HUBER; }

static const char *metric_name(nb_loss_kind k) { return regression(k) ? "mae" : "accuracy"; }

static void session_close(session *s) {
    nb_graph_free(s->g);
    free(s->xb);
    free(s->yb);
    memset(s, 0, sizeof *s);
}

/* The model's input dims after a batch dim (dims[0] left to the caller),
 * checked against d (labels needed or not); the rank, or 0 with the error
 * set. */
static int input_dims(nb_model *m, const nb_dataset *d, bool labels, int dims[NB_MAX_RANK + 1], const char *who) {
    int rank = nb_model_input_dims(m, dims + 1);
    long dim = 1;
    bool overflow = rank < 1;
    for (int i = 1; i <= rank && !overflow; i++) overflow = __builtin_mul_overflow(dim, (long)dims[i], &dim);
    if (!d || !d->x || (labels && !d->y) || d->n < 1) {
        nb__set_last_error("%s: the dataset is empty", who);
        return 0;
    }
    if (overflow) {
        nb__set_last_error("%s: the model's input shape has more elements than a long holds", who);
        return 0;
    }
    if (dim != d->dim) {
        nb__set_last_error("%s: the data has %d features per example, the model takes %ld", who, d->dim, dim);
        return 0;
    }
    return rank;
}

/* The loss of kind lc between out and targets (same shape), a scalar. */
static nb_node *loss_node(nb_graph *g, const nb_loss_config *lc, nb_node *out, nb_node *targets) {
    switch (lc->kind) {
    case NB_LOSS_BINARY: return nb_bce_with_logits(g, out, targets);
    case NB_LOSS_MSE: return nb_mse(g, out, targets);
    case NB_LOSS_HUBER: return nb_huber(g, out, targets, lc->huber_delta > 0 ? lc->huber_delta : 1.0f);
    case NB_LOSS_MAE: { /* mean |d| = mean(relu(d) + relu(-d)): a mean follows the batch */
        nb_node *d = nb_sub(g, out, targets);
        return nb_mean(g, nb_add(g, nb_relu(g, d), nb_relu(g, nb_scale(g, d, -1.0f))));
    }
    default: return nb_softmax_cross_entropy(g, out, targets);
    }
}

static nb_status session_open(session *s, nb_model *m, const nb_dataset *d, int batch, bool mc, uint64_t seed,
                              const nb_loss_config *lc, const char *who) {
    memset(s, 0, sizeof *s);
    s->lc = lc ? *lc : (nb_loss_config){0};
    if ((unsigned)s->lc.kind > NB_LOSS_HUBER) {
        nb__set_last_error("%s: loss kind %d is not an nb_loss_kind", who, (int)s->lc.kind);
        return NB_ERROR;
    }
    if (s->lc.kind == NB_LOSS_SPARSE_CATEGORICAL && s->lc.target_is_input) {
        nb__set_last_error("%s: class labels cannot be the input (target_is_input with a categorical loss)", who);
        return NB_ERROR;
    }
    if (!(s->lc.huber_delta >= 0 && isfinite(s->lc.huber_delta))) {
        nb__set_last_error("%s: huber_delta %g must be finite and >= 0", who, (double)s->lc.huber_delta);
        return NB_ERROR;
    }
    int dims[NB_MAX_RANK + 1], rank = input_dims(m, d, !s->lc.target_is_input, dims, who);
    if (!rank) return NB_ERROR;
    dims[0] = batch;
    s->batch = batch;
    s->dim = d->dim;
    s->g = nb_graph_new();
    if (!s->g) return NB_ERROR;
    nb_graph_set_seed(s->g, seed);
    s->in = nb_input(s->g, "x", rank + 1, dims);
    s->logits = nb_model_apply(m, s->g, s->in, mc);
    /* A softmax (sigmoid) on the last layer: the loss takes its input, as
     * Keras's from_logits=False does, rather than treat probabilities as
     * logits (which trained the chapter's model to 0.675 instead of 0.828). */
    const char *last = s->logits ? nb_node_op(s->logits) : "";
    if ((s->lc.kind == NB_LOSS_SPARSE_CATEGORICAL && strcmp(last, "softmax") == 0) ||
        (s->lc.kind == NB_LOSS_BINARY && strcmp(last, "sigmoid") == 0))
        s->logits = s->logits->in[0];
    nb_shape out = nb_node_shape(s->logits);
    const size_t per = s->logits ? nb_node_size(s->logits) / (size_t)batch : 0;
    s->classes = (int)per;
    if (!s->logits) {
        /* the graph holds the error */
    } else if (s->lc.kind == NB_LOSS_SPARSE_CATEGORICAL) {
        if (out.rank != 2) nb_graph_fail(s->g, "the model's output must be [batch, classes] logits");
        s->labels = nb_input(s->g, "labels", 1, (int[]){batch});
    } else {
        const size_t want = s->lc.target_is_input ? (size_t)d->dim : 1;
        if (per != want) {
            char sh[NB_SHAPE_STR_LEN];
            nb_shape_str(&out, sh, sizeof sh);
            nb_graph_fail(s->g, "the model's output %s has %zu values per example; %s %zu", sh, per,
                          s->lc.target_is_input ? "its target, the input, has" : "a target in y is", want);
        } else {
            s->labels = nb_input(s->g, "targets", out.rank, out.dim);
        }
    }
    nb_node *loss = s->labels ? loss_node(s->g, &s->lc, s->logits, s->labels) : NULL;
    nb_node *penalty = nb_model_penalty(m, s->g);
    s->loss = penalty ? nb_add(s->g, loss, penalty) : loss;
    s->xb = malloc(sizeof(float) * (size_t)batch * (size_t)d->dim);
    s->yb = malloc(sizeof(float) * (size_t)batch);
    if (nb_graph_status(s->g) != NB_OK || !s->xb || !s->yb) {
        nb__set_last_error("%s: %s", who, nb_graph_status(s->g) != NB_OK ? nb_graph_error(s->g) : "out of memory");
        session_close(s);
        return NB_ERROR;
    }
    return NB_OK;
}

/* Gathers examples idx[0..b) (or start.. when idx is NULL) and feeds them. */
static void session_feed(session *s, const nb_dataset *d, const int *idx, int start, int b) {
    NB_PARALLEL_FOR_IF((size_t)b * (size_t)d->dim >= NB_GATHER_PAR_MIN, r, (size_t)b, {
        int k = idx ? idx[start + (int)r] : start + (int)r;
        memcpy(s->xb + r * s->dim, d->x + (size_t)k * d->dim, sizeof(float) * (size_t)d->dim);
        if (!s->lc.target_is_input) s->yb[r] = d->y[k];
    });
    nb_feed(s->g, s->in, s->xb, b);
    nb_feed(s->g, s->labels, s->lc.target_is_input ? s->xb : s->yb, b);
}

/* The metric summed over the b examples of the last forward pass: correct
 * argmax predictions, the fraction of outputs on the target's side
 * (binary), or the mean absolute error per example (regression). */
static double session_correct(const session *s, int b) {
    const float *z = nb_node_value(s->logits);
    const float *t = s->lc.target_is_input ? s->xb : s->yb;
    const int per = s->classes;
    double sum = 0;
    for (int r = 0; r < b; r++) {
        const float *row = z + (size_t)r * per, *tr = t + (size_t)r * per;
        if (s->lc.kind == NB_LOSS_SPARSE_CATEGORICAL) {
            int best = 0;
            for (int c = 1; c < per; c++)
                if (row[c] > row[best]) best = c;
            sum += (float)best == s->yb[r];
        } else {
            double e = 0;
            for (int c = 0; c < per; c++)
                e += s->lc.kind == NB_LOSS_BINARY ? (row[c] > 0) == (tr[c] >= 0.5f) : fabs((double)row[c] - tr[c]);
            sum += e / per;
        }
    }
    return sum;
}

static nb_status session_error(const session *s, const char *who) {
    nb__set_last_error("%s: %s", who, nb_graph_error(s->g));
    return NB_ERROR;
}

/* Mean loss and accuracy over d, inference mode. */
static nb_status session_evaluate(session *s, const nb_dataset *d, double *loss, double *accuracy) {
    double total = 0;
    double correct = 0;
    for (int start = 0; start < d->n; start += s->batch) {
        int b = d->n - start < s->batch ? d->n - start : s->batch;
        session_feed(s, d, NULL, start, b);
        if (nb_forward(s->g, NB_INFERENCE) != NB_OK) return NB_ERROR;
        total += (double)nb_node_value(s->loss)[0] * b;
        correct += session_correct(s, b);
    }
    if (loss) *loss = total / d->n;
    if (accuracy) *accuracy = correct / d->n;
    return NB_OK;
}

nb_status nb_evaluate_loss(nb_model *m, const nb_dataset *d, int batch_size, const nb_loss_config *lc,
                           double *loss, double *metric) {
    session s;
    if (!m) {
        nb__set_last_error("evaluate: model is NULL");
        return NB_ERROR;
    }
    if (batch_size < 1) batch_size = 32;
    if (session_open(&s, m, d, batch_size, false, 0, lc, "evaluate") != NB_OK) return NB_ERROR;
    nb_status st = session_evaluate(&s, d, loss, metric);
    if (st != NB_OK) session_error(&s, "evaluate");
    session_close(&s);
    return st;
}

nb_status nb_evaluate(nb_model *m, const nb_dataset *d, int batch_size, double *loss, double *accuracy) {
    return nb_evaluate_loss(m, d, batch_size, NULL, loss, accuracy);
}

/* ---- fit ---- */

static nb_status check_opts(const nb_fit_opts *o, const nb_dataset *train) {
    if (!train || train->n < 1 || !train->x || !train->y) {
        nb__set_last_error("fit: the training set is empty");
        return NB_ERROR;
    }
    if (o->epochs < 1) {
        nb__set_last_error("fit: epochs is %d, must be >= 1", o->epochs);
        return NB_ERROR;
    }
    if (o->batch_size < 0) {
        nb__set_last_error("fit: batch size is %d, must be >= 1", o->batch_size);
        return NB_ERROR;
    }
    if (!(o->validation_split >= 0 && o->validation_split < 1)) {
        nb__set_last_error("fit: validation split %g outside [0,1)", (double)o->validation_split);
        return NB_ERROR;
    }
    if ((unsigned)o->monitor > NB_MONITOR_ACCURACY) {
        nb__set_last_error("fit: monitor %d is not an nb_monitor", (int)o->monitor);
        return NB_ERROR;
    }
    if (o->patience < 0) {
        nb__set_last_error("fit: patience is %d, must be >= 0", o->patience);
        return NB_ERROR;
    }
    if (!train || train->n < 1) {
        nb__set_last_error("fit: the training set is empty");
        return NB_ERROR;
    }
    return NB_OK;
}

/* Copies every tensor of m into buf (to) or back (from). */
static void snapshot(nb_model *m, float *buf, bool to) {
    nb_tensor *const *t;
    int n = nb_model_tensors(m, &t);
    for (int i = 0; i < n; i++) {
        if (to) memcpy(buf, t[i]->data, t[i]->size * sizeof(float));
        else memcpy(t[i]->data, buf, t[i]->size * sizeof(float));
        buf += t[i]->size;
    }
}

typedef struct fit_state {
    nb_optimizer *opt;
    nb_schedule *sched;
    float *best_weights;
    int *perm;
    session s;
} fit_state;

static void fit_state_free(fit_state *f) {
    nb_optimizer_free(f->opt);
    nb_schedule_free(f->sched);
    free(f->best_weights);
    free(f->perm);
    session_close(&f->s);
}

/* The name of m's first tensor holding a NaN or an infinity, or NULL. */
static const char *nonfinite_tensor(nb_model *m) {
    nb_tensor *const *t;
    int n = nb_model_tensors(m, &t);
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < t[i]->size; j++)
            if (!isfinite(t[i]->data[j])) return t[i]->name;
    return NULL;
}

/* Says where a non-finite loss of `epoch`'s step `step` (0: validation)
 * comes from: a weight the last update broke, or else the first node of
 * that step's forward pass that gives one, found by running the pass again
 * with the graph's finite check (same inputs, same random stream). */
static void report_divergence(session *s, nb_model *m, double loss, int epoch, long step) {
    char where[320];
    const char *bad = nonfinite_tensor(m);
    if (bad) {
        snprintf(where, sizeof where, "the weights of '%s' are not finite (the last update diverged)", bad);
    } else if (step > 0) {
        nb_graph_check_finite(s->g, true);
        if (nb__forward_at(s->g, NB_TRAINING, s->g->step - 1) != NB_OK)
            snprintf(where, sizeof where, "%s", nb_graph_error(s->g));
        else
            snprintf(where, sizeof where, "no node gave a non-finite value when the step ran again");
    } else {
        snprintf(where, sizeof where, "the weights are finite, the validation data may not be");
    }
    if (step > 0)
        nb__set_last_error("fit: the loss is %g at epoch %d, step %ld: %s; lower the learning rate or clip the "
                           "gradients (allow_nonfinite trains on)", loss, epoch, step, where);
    else
        nb__set_last_error("fit: the validation loss is %g after epoch %d: %s", loss, epoch, where);
}

/* Sets the rate (and the 1cycle momentum) for t. */
static void apply_schedule(fit_state *f, double t, float base_momentum) {
    if (!f->sched) return;
    nb_optimizer_set_lr(f->opt, nb_schedule_lr(f->sched, t));
    if (nb_optimizer_has_momentum(f->opt))
        nb_optimizer_set_momentum(f->opt, nb_schedule_momentum(f->sched, t, base_momentum));
}

nb_status nb_fit(nb_model *m, const nb_dataset *train_all, const nb_fit_opts *opts, nb_history *h) {
    nb_fit_opts o = opts ? *opts : nb_fit_defaults();
    if (h) memset(h, 0, sizeof *h);
    if (!m) {
        nb__set_last_error("fit: model is NULL");
        return NB_ERROR;
    }
    if (check_opts(&o, train_all) != NB_OK) return NB_ERROR;
    if (o.batch_size == 0) o.batch_size = 32;
    FILE *out = o.out ? o.out : stdout;

    /* Without a validation set, the last fraction is held out, unshuffled. */
    nb_dataset train = *train_all, held = {0};
    const nb_dataset *val = o.validation;
    if (!val && o.validation_split > 0) {
        int nv = (int)(train_all->n * (double)o.validation_split);
        if (nv < 1 || nv >= train_all->n) {
            nb__set_last_error("fit: a validation split of %g leaves %d of %d examples for validation",
                               (double)o.validation_split, nv, train_all->n);
            return NB_ERROR;
        }
        train.n = train_all->n - nv;
        held = *train_all;
        held.n = nv;
        held.x = train_all->x + (size_t)train.n * train_all->dim;
        held.y = train_all->y + train.n;
        val = &held;
    }

    fit_state f = {0};
    nb_tensor *const *tensors;
    int n_tensors = nb_model_tensors(m, &tensors);
    const int steps = (train.n + o.batch_size - 1) / o.batch_size;
    nb_history hist = {.epochs = calloc((size_t)o.epochs, sizeof(nb_epoch_metrics))};
    f.opt = nb_optimizer_new(&o.optimizer, n_tensors, tensors);
    f.perm = malloc(sizeof(int) * (size_t)train.n);
    if (!f.opt || !f.perm || !hist.epochs) {
        if (f.opt) nb__set_last_error("fit: out of memory");
        goto fail;
    }
    if (o.use_schedule) {
        nb_schedule_config sc = o.schedule;
        if (sc.kind == NB_SCHEDULE_ONECYCLE && sc.total_steps == 0)
            sc.total_steps = o.schedule_per_epoch ? o.epochs : (long)o.epochs * steps;
        if (!(f.sched = nb_schedule_new(&sc))) goto fail;
    }
    size_t best_floats = 0;
    if (o.restore_best) {
        for (int i = 0; i < n_tensors; i++) best_floats += tensors[i]->size;
        if (!(f.best_weights = malloc(sizeof(float) * (best_floats ? best_floats : 1)))) {
            nb__set_last_error("fit: out of memory");
            goto fail;
        }
    }
    if (session_open(&f.s, m, &train, o.batch_size, false, o.seed, &o.loss, "fit") != NB_OK) goto fail;
    hist.metric = metric_name(o.loss.kind);
    if (regression(o.loss.kind) && (o.monitor == NB_MONITOR_VAL_ACCURACY || o.monitor == NB_MONITOR_ACCURACY)) {
        nb__set_last_error("fit: an accuracy monitor with a regression loss, whose metric is the mean absolute "
                           "error: watch a loss");
        goto fail;
    }
    if (val && (val->n < 1 || !val->x || !val->y)) {
        nb__set_last_error("fit: the validation set is empty");
        goto fail;
    }
    if (val && val->dim != train.dim) {
        nb__set_last_error("fit: validation data has %d features, training data %d", val->dim, train.dim);
        goto fail;
    }

    const float base_momentum = nb_optimizer_momentum(f.opt);
    nb_progress prog;
    nb__progress_init(&prog, out, o.verbose > 0, steps, hist.metric);
    double best = INFINITY;
    int wait = 0;
    long step_count = 0, diverged_step = 0;
    nb_fit_point pt = {.seed = o.seed, .batch = o.batch_size, .n = train.n};
    int first_epoch = 1;
    if (o.backup && access(o.backup, F_OK) == 0) { /* a run that stopped: go on where it was */
        if (!nb__backup_read(o.backup, m, f.opt, f.best_weights, best_floats, &hist, o.epochs, &pt)) goto fail;
        first_epoch = pt.epochs_done + 1, step_count = pt.step_count, best = pt.best, wait = pt.wait;
        f.s.g->step = pt.graph_step;
        nb_schedule_set_state(f.sched, pt.sched_lr, pt.sched_best, pt.sched_wait);
        if (o.verbose > 0) fprintf(out, "Resuming from %s after epoch %d\n", o.backup, pt.epochs_done);
    }
    for (int epoch = first_epoch; epoch <= o.epochs; epoch++) {
        nb_epoch_metrics em = {.epoch = epoch, .has_validation = val != NULL};
        double t0 = nb__now(), total = 0, correct = 0;
        nb__progress_epoch(&prog, epoch, o.epochs, t0);
        nb_shuffle(f.perm, train.n, o.seed, (uint64_t)epoch);
        if (o.schedule_per_epoch) apply_schedule(&f, epoch - 1, base_momentum);
        for (int k = 0; k < steps; k++) {
            int start = k * o.batch_size, b = train.n - start < o.batch_size ? train.n - start : o.batch_size;
            if (!o.schedule_per_epoch) apply_schedule(&f, (double)step_count, base_momentum);
            session_feed(&f.s, &train, f.perm, start, b);
            nb_forward(f.s.g, NB_TRAINING);
            nb_backward(f.s.g, f.s.loss);
            if (nb_graph_status(f.s.g) != NB_OK) {
                session_error(&f.s, "fit");
                goto fail;
            }
            const float step_loss = nb_node_value(f.s.loss)[0];
            if (!isfinite(step_loss) && !o.allow_nonfinite) {
                report_divergence(&f.s, m, step_loss, epoch, k + 1);
                nb__progress_diverged(&prog, k + 1, step_loss);
                diverged_step = k + 1;
                goto diverged;
            }
            nb_optimizer_step(f.opt);
            nb_model_constrain(m);
            step_count++;
            total += (double)step_loss * b;
            correct += session_correct(&f.s, b);
            int seen = start + b;
            nb__progress_step(&prog, k + 1, total / seen, correct / seen, nb__now());
        }
        em.seconds = nb__now() - t0;
        em.step_seconds = em.seconds / steps;
        em.loss = total / train.n;
        em.accuracy = correct / train.n;
        if (val && session_evaluate(&f.s, val, &em.val_loss, &em.val_accuracy) != NB_OK) {
            session_error(&f.s, "fit: validation");
            goto fail;
        }
        if (val && !isfinite(em.val_loss) && !o.allow_nonfinite) {
            report_divergence(&f.s, m, em.val_loss, epoch, 0);
            nb__progress_diverged(&prog, 0, em.val_loss);
            diverged_step = 0;
            goto diverged;
        }
        hist.train_seconds += em.seconds;
        double watched_loss = val ? em.val_loss : em.loss;
        if (f.sched && nb_schedule_observe(f.sched, watched_loss)) nb_optimizer_set_lr(f.opt, nb_schedule_lr(f.sched, 0));
        /* lower is better: accuracies are watched negated */
        bool acc = o.monitor == NB_MONITOR_VAL_ACCURACY || o.monitor == NB_MONITOR_ACCURACY;
        bool on_val = val && (o.monitor == NB_MONITOR_VAL_LOSS || o.monitor == NB_MONITOR_VAL_ACCURACY);
        double monitored = acc ? -(on_val ? em.val_accuracy : em.accuracy) : (on_val ? em.val_loss : em.loss);
        em.lr = nb_optimizer_lr(f.opt);
        nb__progress_end(&prog, &em);
        hist.epochs[hist.n_epochs++] = em;
        if (monitored < best) {
            best = monitored;
            hist.best_epoch = epoch;
            wait = 0;
            if (f.best_weights) snapshot(m, f.best_weights, true);
            if (o.checkpoint && nb_model_save(m, o.checkpoint) != NB_OK) goto fail;
        } else {
            wait++;
        }
        if (o.backup) {
            pt.epochs_done = epoch, pt.step_count = step_count, pt.graph_step = f.s.g->step;
            pt.opt_steps = nb_optimizer_steps(f.opt), pt.nadam_product = nb_optimizer_nadam_product(f.opt);
            pt.lr = nb_optimizer_lr(f.opt), pt.momentum = nb_optimizer_momentum(f.opt), pt.best = best, pt.wait = wait;
            nb_schedule_get_state(f.sched, &pt.sched_lr, &pt.sched_best, &pt.sched_wait);
            if (!nb__backup_write(o.backup, m, f.opt, f.best_weights, best_floats, &hist, &pt)) goto fail;
        }
        bool stop = o.on_epoch && !o.on_epoch(&em, o.user);
        if (o.patience > 0 && wait >= o.patience) {
            hist.stopped_early = true;
            if (o.verbose > 0) fprintf(out, "Epoch %d: early stopping (best epoch %d)\n", epoch, hist.best_epoch);
            stop = true;
        }
        if (stop) break;
    }
    if (f.best_weights && hist.best_epoch > 0) snapshot(m, f.best_weights, false);
    if (o.backup) unlink(o.backup); /* done: the next fit with this backup starts afresh, as Keras's */
    hist.samples_per_second = hist.train_seconds > 0 ? (double)train.n * hist.n_epochs / hist.train_seconds : 0;
    fit_state_free(&f);
    if (h) *h = hist;
    else nb_history_free(&hist);
    return NB_OK;
diverged:
    hist.diverged = true;
    hist.diverged_epoch = hist.n_epochs + 1;
    hist.diverged_step = diverged_step;
    fit_state_free(&f);
    if (h) *h = hist;
    else nb_history_free(&hist);
    return NB_ERROR;
fail:
    fit_state_free(&f);
    nb_history_free(&hist);
    return NB_ERROR;
}

/* ---- prediction ---- */

nb_status nb_predict(nb_model *m, const nb_dataset *d, int batch_size, float *out) {
    if (!m || !out) {
        nb__set_last_error("predict: %s is NULL", !m ? "model" : "out");
        return NB_ERROR;
    }
    if (batch_size < 1) batch_size = 32;
    int dims[NB_MAX_RANK + 1], rank = input_dims(m, d, false, dims, "predict");
    if (!rank) return NB_ERROR;
    dims[0] = batch_size;
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", rank + 1, dims);
    nb_node *y = nb_model_apply(m, g, x, false);
    nb_status st = nb_graph_status(g);
    const size_t per = y ? nb_node_size(y) / (size_t)batch_size : 0;
    for (int start = 0; st == NB_OK && start < d->n; start += batch_size) {
        const int b = d->n - start < batch_size ? d->n - start : batch_size;
        nb_feed(g, x, d->x + (size_t)start * d->dim, b);
        if ((st = nb_forward(g, NB_INFERENCE)) == NB_OK)
            memcpy(out + (size_t)start * per, nb_node_value(y), sizeof(float) * per * (size_t)b);
    }
    if (st != NB_OK) nb__set_last_error("predict: %s", nb_graph_error(g));
    nb_graph_free(g);
    return st;
}

/* ---- MC dropout ---- */

nb_status nb_predict_mc(nb_model *m, const nb_dataset *d, int batch_size, int samples, uint64_t seed,
                        float *mean_probs, float *std_probs, double *accuracy) {
    session s;
    if (!m || samples < 1) {
        nb__set_last_error("predict_mc: %s", !m ? "model is NULL" : "samples must be >= 1");
        return NB_ERROR;
    }
    if (batch_size < 1) batch_size = 32;
    if (session_open(&s, m, d, batch_size, true, seed, NULL, "predict_mc") != NB_OK) return NB_ERROR;
    const int c = s.classes;
    double *sum = malloc(sizeof(double) * (size_t)batch_size * c), *sq = malloc(sizeof(double) * (size_t)batch_size * c);
    double *e = malloc(sizeof(double) * (size_t)c);
    if (!sum || !sq || !e) {
        free(sum), free(sq), free(e), session_close(&s);
        nb__set_last_error("predict_mc: out of memory");
        return NB_ERROR;
    }
    long correct = 0;
    nb_status st = NB_OK;
    for (int start = 0; start < d->n && st == NB_OK; start += batch_size) {
        int b = d->n - start < batch_size ? d->n - start : batch_size;
        session_feed(&s, d, NULL, start, b);
        memset(sum, 0, sizeof(double) * (size_t)b * c);
        memset(sq, 0, sizeof(double) * (size_t)b * c);
        for (int k = 0; k < samples && st == NB_OK; k++) {
            if ((st = nb_forward(s.g, NB_INFERENCE)) != NB_OK) break;
            const float *z = nb_node_value(s.logits);
            for (int r = 0; r < b; r++) { /* softmax of the row, in double */
                const float *row = z + (size_t)r * c;
                double mx = row[0], norm = 0, *sr = sum + (size_t)r * c, *qr = sq + (size_t)r * c;
                for (int j = 1; j < c; j++) mx = row[j] > mx ? row[j] : mx;
                for (int j = 0; j < c; j++) norm += (e[j] = exp(row[j] - mx)); /* one exp per class */
                for (int j = 0; j < c; j++) {
                    const double p = e[j] / norm;
                    sr[j] += p;
                    qr[j] += p * p;
                }
            }
        }
        for (int r = 0; st == NB_OK && r < b; r++) {
            int best = 0;
            for (int j = 0; j < c; j++) {
                double mean = sum[r * c + j] / samples, var = sq[r * c + j] / samples - mean * mean;
                if (mean_probs) mean_probs[(size_t)(start + r) * c + j] = (float)mean;
                if (std_probs) std_probs[(size_t)(start + r) * c + j] = (float)sqrt(var > 0 ? var : 0);
                if (sum[r * c + j] > sum[r * c + best]) best = j;
            }
            correct += (float)best == d->y[start + r];
        }
    }
    if (st != NB_OK) session_error(&s, "predict_mc");
    else if (accuracy) *accuracy = (double)correct / d->n;
    free(sum), free(sq), free(e);
    session_close(&s);
    return st;
}
