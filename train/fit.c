/* train/fit.c — fit, evaluate and MC-dropout prediction over one replayed graph. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph/internal.h"
#include "nabla/ops.h"
#include "nabla/train.h"
#include "train/backup.h"
#include "train/diagnose.h"
#include "train/grad_sync.h"
#include "train/progress.h"

nb_fit_opts nb_fit_defaults(void) {
    return (nb_fit_opts){.epochs = 1, .batch_size = 32, .optimizer = nb_optimizer_defaults(NB_SGD), .verbose = 1};
}

void nb_history_free(nb_history *h) {
    if (!h) return;
    free(h->epochs);
    memset(h, 0, sizeof *h);
}

/* One output of a session: its node (logits when its last op was a
 * softmax or sigmoid the loss takes apart), its target and loss. */
typedef struct out_slot {
    nb_node *z, *target, *loss; /* target, loss: NULL for an output without a loss */
    nb_loss_config lc;
    nb_metric_kind metric; /* as asked (NB_METRIC_DEFAULT: the loss's) */
    float weight;
    int per;        /* values per example */
    int array;      /* its target's array in the data, or -1: the first input's (target_is_input) */
    float *tb;      /* the batch's targets (NULL when they are the input's) */
} out_slot;

/* One graph of the model over batches: inputs, outputs, losses, and the
 * buffers a batch is gathered into. */
typedef struct session {
    nb_graph *g;
    int n_in, n_out;
    nb_node *in[NB_MODEL_MAX_IO];
    int in_array[NB_MODEL_MAX_IO]; /* the data's array for each input */
    float *xb[NB_MODEL_MAX_IO];
    out_slot out[NB_MODEL_MAX_IO];
    nb_node *loss; /* the weighted sum and the penalty */
    nb_node **layer_out; /* each layer's output node (nb_model_apply_traced) */
    nb_graph_sync sync;  /* batch statistics over processes (nb_fit_dist.sync_batchnorm) */
    int batch, first; /* first: the first output with a loss, whose metric is the epoch's */
} session;

static bool regression(nb_loss_kind k) { return k == NB_LOSS_MSE || k == NB_LOSS_MAE || k == NB_LOSS_HUBER; }

/* The metric kind an output reports: its own, or its loss's default. */
static nb_metric_kind metric_of(nb_loss_kind loss, nb_metric_kind metric) {
    if (metric != NB_METRIC_DEFAULT) return metric;
    return regression(loss) ? NB_METRIC_MAE : loss == NB_LOSS_BINARY ? NB_METRIC_BINARY_ACCURACY : NB_METRIC_ACCURACY;
}

/* Keras's names; the default binary metric keeps the name "accuracy", as
 * Keras's metrics=["accuracy"] on a binary output. */
static const char *metric_name(nb_loss_kind loss, nb_metric_kind metric) {
    switch (metric_of(loss, metric)) {
    case NB_METRIC_BINARY_ACCURACY: return metric == NB_METRIC_DEFAULT ? "accuracy" : "binary_accuracy";
    case NB_METRIC_MSE: return "mse";
    case NB_METRIC_MAE: return "mae";
    default: return "accuracy";
    }
}

static void session_close(session *s) {
    nb_graph_free(s->g);
    free(s->layer_out);
    for (int i = 0; i < NB_MODEL_MAX_IO; i++) free(s->xb[i]), free(s->out[i].tb);
    memset(s, 0, sizeof *s);
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

/* The index of the array named name (or at position pos when no array has
 * a name) among n, or -1. */
static int find_array(const nb_array *a, int n, const char *name, int pos) {
    bool named = false;
    for (int i = 0; i < n; i++) named = named || a[i].name;
    if (!named) return pos < n ? pos : -1;
    for (int i = 0; name && i < n; i++)
        if (a[i].name && strcmp(a[i].name, name) == 0) return i;
    return -1;
}

/* Checks a loss config; false with the error set. */
static bool loss_ok(const nb_loss_config *lc, const char *who, const char *output) {
    if ((unsigned)lc->kind > NB_LOSS_HUBER) {
        nb__set_last_error("%s: output '%s': loss kind %d is not an nb_loss_kind", who, output, (int)lc->kind);
        return false;
    }
    if (lc->kind == NB_LOSS_SPARSE_CATEGORICAL && lc->target_is_input) {
        nb__set_last_error("%s: output '%s': class labels cannot be the input (target_is_input with a categorical "
                           "loss)", who, output);
        return false;
    }
    if (!(lc->huber_delta >= 0 && isfinite(lc->huber_delta))) {
        nb__set_last_error("%s: output '%s': huber_delta %g must be finite and >= 0", who, output,
                           (double)lc->huber_delta);
        return false;
    }
    return true;
}

/* Each output's loss config and weight from opts (NULL: the defaults);
 * false with the error set. */
static bool output_losses(const nb_model *m, const nb_fit_opts *o, int n_out, out_slot *out, const char *who) {
    const nb_loss_config base = o ? o->loss : (nb_loss_config){0};
    const int nl = o ? o->n_losses : 0;
    if (nl < 0 || nl > NB_MODEL_MAX_IO || (nl > 0 && !o->losses)) {
        nb__set_last_error("%s: %d losses (0 to %d, with an array)", who, nl, NB_MODEL_MAX_IO);
        return false;
    }
    for (int k = 0; k < n_out; k++) out[k].lc = base, out[k].weight = nl ? 0 : 1, out[k].array = -2;
    bool any = nl == 0;
    for (int i = 0; i < nl; i++) {
        const nb_output_loss *ol = &o->losses[i];
        int k = -1;
        for (int j = 0; ol->output && j < n_out; j++)
            if (strcmp(nb_model_output_name(m, j), ol->output) == 0) k = j;
        if (!ol->output) k = i < n_out ? i : -1;
        if (k < 0) {
            nb__set_last_error("%s: loss %d is for output '%s', which the model lacks", who, i,
                               ol->output ? ol->output : "(by position)");
            return false;
        }
        if (out[k].array != -2) {
            nb__set_last_error("%s: output '%s' has two losses", who, nb_model_output_name(m, k));
            return false;
        }
        if (!(ol->weight >= 0 && isfinite(ol->weight))) {
            nb__set_last_error("%s: output '%s': loss weight %g must be finite and >= 0", who,
                               nb_model_output_name(m, k), (double)ol->weight);
            return false;
        }
        out[k].lc = ol->loss;
        out[k].metric = ol->metric;
        out[k].array = -1;
        if ((unsigned)ol->metric > NB_METRIC_MAE ||
            (ol->metric != NB_METRIC_DEFAULT &&
             (ol->metric == NB_METRIC_ACCURACY) != (ol->loss.kind == NB_LOSS_SPARSE_CATEGORICAL))) {
            nb__set_last_error("%s: output '%s': metric %d does not go with loss kind %d (accuracy takes class "
                               "labels, the others targets shaped as the output)", who, nb_model_output_name(m, k),
                               (int)ol->metric, (int)ol->loss.kind);
            return false;
        }
        out[k].weight = ol->ignore ? 0 : ol->weight > 0 ? ol->weight : 1;
        any = any || out[k].weight > 0;
    }
    for (int k = 0; k < n_out; k++) {
        if (out[k].weight > 0 && !loss_ok(&out[k].lc, who, nb_model_output_name(m, k))) return false;
        out[k].array = -1;
    }
    if (!any) {
        nb__set_last_error("%s: every output's loss is ignored or weighs 0", who);
        return false;
    }
    return true;
}

/* The model's input i's size per example; -1 on overflow. */
static long input_size(const nb_model *m, int i) {
    int dims[NB_MAX_RANK];
    int rank = nb_model_input_dims_at(m, i, dims);
    long dim = 1;
    for (int d = 0; d < rank; d++)
        if (__builtin_mul_overflow(dim, (long)dims[d], &dim)) return -1;
    return rank ? dim : -1;
}

/* Builds the session's graph of m over batches of `batch`, with d's arrays
 * matched to inputs and (when targets) outputs. */
static nb_status session_open(session *s, nb_model *m, const nb_data *d, int batch, bool mc, uint64_t seed,
                              const nb_fit_opts *o, bool targets, const char *who) {
    memset(s, 0, sizeof *s);
    if (nb_model_status(m) != NB_OK) {
        nb__set_last_error("%s: the model is in error: %s", who, nb_model_error(m));
        return NB_ERROR;
    }
    if (!d || d->n < 1 || d->n_inputs < 1 || !d->inputs || (d->n_targets > 0 && !d->targets) || d->n_targets < 0) {
        nb__set_last_error("%s: the dataset is empty", who);
        return NB_ERROR;
    }
    s->n_in = nb_model_input_count(m);
    s->n_out = nb_model_output_count(m);
    if (s->n_in < 1 || s->n_out < 1) {
        nb__set_last_error("%s: the model has no %s", who, s->n_in < 1 ? "input" : "output");
        return NB_ERROR;
    }
    if (d->n_inputs != s->n_in) {
        nb__set_last_error("%s: the data has %d input arrays, the model %d inputs", who, d->n_inputs, s->n_in);
        return NB_ERROR;
    }
    for (int i = 0; i < s->n_in; i++) {
        const char *name = nb_model_input_name(m, i);
        int a = find_array(d->inputs, d->n_inputs, name, i);
        long want = input_size(m, i);
        if (a < 0) {
            nb__set_last_error("%s: no input array is named '%s'", who, name);
            return NB_ERROR;
        }
        if (want < 0) {
            nb__set_last_error("%s: the model's input shape has more elements than a long holds", who);
            return NB_ERROR;
        }
        if (!d->inputs[a].data || d->inputs[a].dim != want) {
            if (s->n_in == 1 && d->inputs[a].data)
                nb__set_last_error("%s: the data has %d features per example, the model takes %ld", who,
                                   d->inputs[a].dim, want);
            else
                nb__set_last_error("%s: input '%s' takes %ld features per example, its array %s %d", who, name, want,
                                   d->inputs[a].data ? "has" : "is NULL with", d->inputs[a].dim);
            return NB_ERROR;
        }
        s->in_array[i] = a;
    }
    if (targets && !output_losses(m, o, s->n_out, s->out, who)) return NB_ERROR;
    s->batch = batch;
    s->g = nb_graph_new();
    if (!s->g) return NB_ERROR;
    nb_graph_set_seed(s->g, seed);
    for (int i = 0; i < s->n_in; i++) {
        int dims[NB_MAX_RANK + 1];
        int rank = nb_model_input_dims_at(m, i, dims + 1);
        dims[0] = batch;
        s->in[i] = nb_input(s->g, nb_model_input_name(m, i), rank + 1, dims);
    }
    nb_node *outs[NB_MODEL_MAX_IO] = {0};
    if (!(s->layer_out = calloc((size_t)nb_model_layer_count(m) + 1, sizeof *s->layer_out)))
        nb_graph_fail(s->g, "out of memory");
    nb_model_apply_traced(m, s->g, s->in, outs, s->layer_out, mc);
    nb_node *total = NULL;
    s->first = -1;
    for (int k = 0; k < s->n_out && nb_graph_status(s->g) == NB_OK; k++) {
        out_slot *os = &s->out[k];
        os->z = outs[k];
        os->per = (int)(nb_node_size(os->z) / (size_t)batch);
        if (!targets || os->weight == 0) continue;
        if (s->first < 0) s->first = k;
        /* A softmax (sigmoid) on the last layer: the loss takes its input,
         * as Keras's from_logits=False does, rather than treat
         * probabilities as logits (which trained the chapter's model to
         * 0.675 instead of 0.828). */
        const char *last = nb_node_op(os->z);
        if ((os->lc.kind == NB_LOSS_SPARSE_CATEGORICAL && strcmp(last, "softmax") == 0) ||
            (os->lc.kind == NB_LOSS_BINARY && strcmp(last, "sigmoid") == 0))
            os->z = os->z->in[0];
        const char *name = nb_model_output_name(m, k);
        nb_shape sh = nb_node_shape(os->z);
        char shs[NB_SHAPE_STR_LEN];
        nb_shape_str(&sh, shs, sizeof shs);
        int want = 1;
        if (os->lc.target_is_input) {
            os->array = -1;
            want = d->inputs[s->in_array[0]].dim;
        } else {
            os->array = find_array(d->targets, d->n_targets, name, k);
            if (os->array < 0 || !d->targets[os->array].data) {
                nb_graph_fail(s->g, "output '%s' has a loss but no target array", name);
                break;
            }
            want = os->lc.kind == NB_LOSS_SPARSE_CATEGORICAL ? 1 : os->per;
            if (d->targets[os->array].dim != want) {
                if (s->n_out == 1 && want == os->per)
                    nb_graph_fail(s->g, "the model's output %s has %d values per example; a target in y is %d", shs,
                                  os->per, d->targets[os->array].dim);
                else
                    nb_graph_fail(s->g, "output '%s' %s needs %d target value%s per example, its array has %d", name,
                                  shs, want, want == 1 ? "" : "s", d->targets[os->array].dim);
                break;
            }
        }
        if (os->lc.kind == NB_LOSS_SPARSE_CATEGORICAL) {
            if (sh.rank != 2) nb_graph_fail(s->g, "the model's output must be [batch, classes] logits");
            os->target = nb_input(s->g, "labels", 1, (int[]){batch});
        } else if (os->per != want) {
            nb_graph_fail(s->g, "the model's output %s has %d values per example; %s %d", shs, os->per,
                          os->lc.target_is_input ? "its target, the input, has" : "a target in y is", want);
        } else {
            os->target = nb_input(s->g, "targets", sh.rank, sh.dim);
        }
        if (nb_graph_status(s->g) != NB_OK) break;
        os->loss = loss_node(s->g, &os->lc, os->z, os->target);
        nb_node *term = os->weight == 1 ? os->loss : nb_scale(s->g, os->loss, os->weight);
        total = total ? nb_add(s->g, total, term) : term;
        if (os->array >= 0 && !(os->tb = malloc(sizeof(float) * (size_t)batch * (size_t)want)))
            nb_graph_fail(s->g, "out of memory");
    }
    nb_node *penalty = nb_graph_status(s->g) == NB_OK ? nb_model_penalty(m, s->g) : NULL;
    s->loss = penalty && total ? nb_add(s->g, total, penalty) : total;
    for (int i = 0; i < s->n_in && nb_graph_status(s->g) == NB_OK; i++)
        if (!(s->xb[i] = malloc(sizeof(float) * (size_t)batch * (size_t)d->inputs[s->in_array[i]].dim)))
            nb_graph_fail(s->g, "out of memory");
    if (nb_graph_status(s->g) != NB_OK) {
        nb__set_error_from_graph(s->g, "%s: %s", who, nb_graph_error(s->g));
        session_close(s);
        return NB_ERROR;
    }
    return NB_OK;
}

/* Gathers rows idx[start..start+b) (or start.. when idx is NULL) of the
 * array into buf. */
static void gather(float *buf, const nb_array *a, const int *idx, int start, int b) {
    const size_t dim = (size_t)a->dim;
    NB_PARALLEL_FOR_IF((size_t)b * dim >= NB_GATHER_PAR_MIN, r, (size_t)b, {
        size_t k = (size_t)(idx ? idx[start + (int)r] : start + (int)r);
        memcpy(buf + r * dim, a->data + k * dim, sizeof(float) * dim);
    });
}

/* Gathers examples idx[start..start+b) (or start.. when idx is NULL) and feeds them. */
static void session_feed(session *s, const nb_data *d, const int *idx, int start, int b) {
    for (int i = 0; i < s->n_in; i++) {
        gather(s->xb[i], &d->inputs[s->in_array[i]], idx, start, b);
        nb_feed(s->g, s->in[i], s->xb[i], b);
    }
    for (int k = 0; k < s->n_out; k++) {
        out_slot *os = &s->out[k];
        if (!os->target) continue;
        if (os->tb) gather(os->tb, &d->targets[os->array], idx, start, b);
        nb_feed(s->g, os->target, os->tb ? os->tb : s->xb[0], b);
    }
}

/* Output k's metric summed over the b examples of the last forward pass:
 * correct argmax predictions, the fraction of outputs on the target's side
 * (binary), or the mean absolute error per example (regression). */
static double session_correct(const session *s, int k, int b) {
    const out_slot *os = &s->out[k];
    if (!os->target) return 0;
    const float *z = nb_node_value(os->z);
    const float *t = os->tb ? os->tb : s->xb[0];
    const int per = os->per;
    double sum = 0;
    for (int r = 0; r < b; r++) {
        const float *row = z + (size_t)r * per;
        const nb_metric_kind kind = metric_of(os->lc.kind, os->metric);
        if (kind == NB_METRIC_ACCURACY) {
            int best = 0;
            for (int c = 1; c < per; c++)
                if (row[c] > row[best]) best = c;
            sum += (float)best == t[r];
        } else {
            const float *tr = t + (size_t)r * per;
            double e = 0;
            for (int c = 0; c < per; c++) {
                const double d = (double)row[c] - tr[c];
                e += kind == NB_METRIC_BINARY_ACCURACY ? (row[c] > 0) == (tr[c] >= 0.5f)
                     : kind == NB_METRIC_MSE           ? d * d
                                                       : fabs(d);
            }
            sum += e / per;
        }
    }
    return sum;
}

static nb_status session_error(const session *s, const char *who) {
    nb__set_error_from_graph(s->g, "%s: %s", who, nb_graph_error(s->g));
    return NB_ERROR;
}

/* ---- data parallelism (nb_fit_dist) ---- */

/* The share [*lo, *lo + *n) of rows [start, start + b) that this process takes. */
static void share_of(const nb_fit_dist *d, int start, int b, int *lo, int *n) {
    if (!d) {
        *lo = start, *n = b;
        return;
    }
    const int a = start + (int)((long)b * d->rank / d->size), z = start + (int)((long)b * (d->rank + 1) / d->size);
    *lo = a, *n = z - a;
}

/* Sums v over the processes (nothing alone); false with the error set. */
static bool dist_sum(const nb_fit_dist *d, double *v, int n) {
    if (!d) return true;
    if (d->sum(d->user, v, n) == NB_OK) return true;
    if (!nb_last_error()[0]) nb__set_last_error("fit: summing over the processes failed");
    return false;
}

/* Processes flag themselves by summing 2^rank (ranks from 52 on share
 * 2^52, exact in a double): the lowest rank flagged in such a sum. */
static double flag_of(const nb_fit_dist *d) { return ldexp(1, d->rank < 52 ? d->rank : 52); }
static int lowest_flagged(double sum) {
    int r = 0;
    while (r < 52 && fmod(floor(sum / ldexp(1, r)), 2) != 1) r++;
    return r;
}

/* Whether every process holds the value rank 0 holds; false (with the
 * error naming the lowest rank that differs, and what) when not. */
static bool dist_same(const nb_fit_dist *d, uint64_t h, const char *what) {
    if (!d) return true;
    double v[2] = {d->rank == 0 ? (double)(h >> 32) : 0, d->rank == 0 ? (double)(h & 0xffffffffu) : 0};
    if (!dist_sum(d, v, 2)) return false;
    const bool same = (uint64_t)v[0] == h >> 32 && (uint64_t)v[1] == (h & 0xffffffffu);
    double differ[1] = {same ? 0 : flag_of(d)};
    if (!dist_sum(d, differ, 1)) return false;
    if (differ[0] == 0) return true;
    nb__set_last_error("fit: %s differ between the processes: rank %d's are not rank 0's", what,
                       lowest_flagged(differ[0]));
    return false;
}

/* Plans the gradients' sums again (after a callback froze or unfroze
 * layers), as one decision of all processes: if any could not plan, or
 * planned other sums than rank 0 (a layer frozen on one process only), all
 * stop here, rather than wait for a sum that never comes or add up
 * mismatched buckets. */
static bool replan_sums(const nb_fit_dist *d, nb__grad_sync *g, int epoch) {
    const bool planned = nb__grad_sync_refresh(g);
    double failed[1] = {planned ? 0 : flag_of(d)};
    if (!dist_sum(d, failed, 1) || !planned) return false;
    if (failed[0] > 0) {
        nb__set_last_error("fit: process %d could not plan its gradient sums at epoch %d; this one stops with it",
                           lowest_flagged(failed[0]), epoch);
        return false;
    }
    return dist_same(d, nb__grad_sync_plan_hash(g), "the trainable tensors");
}

/* FNV-1a over bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t weights_hash(nb_model *m) {
    nb_tensor *const *t;
    int n = nb_model_tensors(m, &t);
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) h = fnv(h, t[i]->data, t[i]->size * sizeof(float));
    return h;
}

/* Without synchronized batch norm, the tensors no gradient moves but a
 * pass may (moving statistics): rank 0's everywhere, exactly (a sum with
 * zeros), as PyTorch DDP's broadcast_buffers, so every process keeps the
 * same model. (The gradients are summed by train/grad_sync.c.) */
static bool dist_moving_stats(const nb_fit_dist *d, nb_model *m) {
    nb_tensor *const *t;
    int n = nb_model_tensors(m, &t);
    for (int i = 0; !d->sync_batchnorm && i < n; i++) {
        if (t[i]->trainable) continue;
        if (d->rank != 0) memset(t[i]->data, 0, t[i]->size * sizeof(float));
        if (d->sum_floats(d->user, t[i]->data, t[i]->size) != NB_OK) {
            if (!nb_last_error()[0]) nb__set_last_error("fit: sharing rank 0's moving statistics failed");
            return false;
        }
    }
    return true;
}

/* Running sums of a pass over data: the total loss and each output's loss
 * and metric, weighted by the batch's size. */
typedef struct sums {
    double total, loss[NB_MODEL_MAX_IO], metric[NB_MODEL_MAX_IO];
} sums;

static void sums_add(sums *u, const session *s, int b) {
    u->total += (double)nb_node_value(s->loss)[0] * b;
    for (int k = 0; k < s->n_out; k++)
        if (s->out[k].loss) {
            u->loss[k] += (double)nb_node_value(s->out[k].loss)[0] * b;
            u->metric[k] += session_correct(s, k, b);
        }
}

/* Adds u over the processes (outputs 0..n_out). */
static bool sums_reduce(const nb_fit_dist *d, sums *u, int n_out) {
    if (!d) return true;
    double v[1 + 2 * NB_MODEL_MAX_IO];
    v[0] = u->total;
    for (int k = 0; k < n_out; k++) v[1 + k] = u->loss[k], v[1 + n_out + k] = u->metric[k];
    if (!dist_sum(d, v, 1 + 2 * n_out)) return false;
    u->total = v[0];
    for (int k = 0; k < n_out; k++) u->loss[k] = v[1 + k], u->metric[k] = v[1 + n_out + k];
    return true;
}

/* The means into em's training (val false) or validation fields. */
static void sums_store(const sums *u, const session *s, int n, bool val, nb_epoch_metrics *em) {
    em->n_outputs = s->n_out;
    for (int k = 0; k < s->n_out; k++) {
        (val ? em->val_output_loss : em->output_loss)[k] = u->loss[k] / n;
        (val ? em->val_output_metric : em->output_metric)[k] = u->metric[k] / n;
    }
    *(val ? &em->val_loss : &em->loss) = u->total / n;
    *(val ? &em->val_accuracy : &em->accuracy) = u->metric[s->first] / n;
}

/* Mean losses and metrics over d, inference mode, into em's training
 * (val false) or validation fields. */
static nb_status session_evaluate_shared(session *s, const nb_data *d, bool val, nb_epoch_metrics *em,
                                         const nb_fit_dist *dist) {
    sums u = {0};
    int lo, n;
    share_of(dist, 0, d->n, &lo, &n); /* each process its share of the rows */
    nb_status st = NB_OK;
    for (int start = lo; start < lo + n; start += s->batch) {
        int b = lo + n - start < s->batch ? lo + n - start : s->batch;
        session_feed(s, d, NULL, start, b);
        if ((st = nb_forward(s->g, NB_INFERENCE)) != NB_OK) break;
        sums_add(&u, s, b);
    }
    if (dist) { /* a failed share is every process's failure */
        double failed[1] = {st != NB_OK};
        if (!dist_sum(dist, failed, 1)) return NB_ERROR;
        if (failed[0] > 0) {
            if (st == NB_OK) nb_graph_fail(s->g, "another process failed in validation");
            return NB_ERROR;
        }
        if (!sums_reduce(dist, &u, s->n_out)) return nb_graph_fail(s->g, "%s", nb_last_error());
    }
    if (st != NB_OK) return st;
    sums_store(&u, s, d->n, val, em);
    return NB_OK;
}

static nb_status session_evaluate(session *s, const nb_data *d, bool val, nb_epoch_metrics *em) {
    return session_evaluate_shared(s, d, val, em, NULL);
}

/* A dataset as data: its x as the one input, y (or x) as the one target. */
static nb_data dataset_data(const nb_dataset *d, bool target_is_input, nb_array arrays[2]) {
    arrays[0] = (nb_array){NULL, d ? d->x : NULL, d ? d->dim : 0};
    arrays[1] = (nb_array){NULL, d ? d->y : NULL, 1};
    bool empty = !d || !d->x || d->n < 1 || (!target_is_input && !d->y);
    return (nb_data){empty ? 0 : d->n, 1, &arrays[0], target_is_input ? 0 : 1, &arrays[1]};
}

nb_status nb_evaluate_data(nb_model *m, const nb_data *d, const nb_fit_opts *opts, nb_epoch_metrics *out) {
    session s;
    if (!m || !out) {
        nb__set_last_error("evaluate: %s is NULL", !m ? "model" : "out");
        return NB_ERROR;
    }
    const int batch = opts && opts->batch_size > 0 ? opts->batch_size : 32;
    if (session_open(&s, m, d, batch, false, 0, opts, true, "evaluate") != NB_OK) return NB_ERROR;
    memset(out, 0, sizeof *out);
    nb_status st = session_evaluate(&s, d, false, out);
    if (st != NB_OK) session_error(&s, "evaluate");
    session_close(&s);
    return st;
}

nb_status nb_evaluate_loss(nb_model *m, const nb_dataset *d, int batch_size, const nb_loss_config *lc,
                           double *loss, double *metric) {
    nb_array arrays[2];
    nb_fit_opts o = {.batch_size = batch_size, .loss = lc ? *lc : (nb_loss_config){0}};
    nb_data data = dataset_data(d, o.loss.target_is_input, arrays);
    nb_epoch_metrics em;
    if (nb_evaluate_data(m, &data, &o, &em) != NB_OK) return NB_ERROR;
    if (loss) *loss = em.loss;
    if (metric) *metric = em.accuracy;
    return NB_OK;
}

nb_status nb_evaluate(nb_model *m, const nb_dataset *d, int batch_size, double *loss, double *accuracy) {
    return nb_evaluate_loss(m, d, batch_size, NULL, loss, accuracy);
}

/* ---- fit ---- */

static nb_status check_opts(const nb_fit_opts *o, const nb_data *train) {
    if (!train || train->n < 1) {
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
    return NB_OK;
}

/* The last nv examples of d as held (validation) and the rest as kept,
 * their arrays in arrays[0..2·(inputs + targets)). */
static void split_data(const nb_data *d, int nv, nb_data *kept, nb_data *held, nb_array *arrays) {
    const int ni = d->n_inputs, nt = d->n_targets, n = d->n - nv;
    nb_array *ki = arrays, *kt = arrays + ni, *hi = kt + nt, *ht = hi + ni;
    for (int i = 0; i < ni; i++) {
        ki[i] = hi[i] = d->inputs[i];
        if (hi[i].data) hi[i].data += (size_t)n * (size_t)hi[i].dim;
    }
    for (int i = 0; i < nt; i++) {
        kt[i] = ht[i] = d->targets[i];
        if (ht[i].data) ht[i].data += (size_t)n * (size_t)ht[i].dim;
    }
    *kept = (nb_data){n, ni, ki, nt, kt};
    *held = (nb_data){nv, ni, hi, nt, ht};
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
    nb__diag *diag;
    nb__grad_sync *grads; /* with processes: the gradients' sums */
    nb_optimizer *opt;
    nb_schedule *sched;
    float *best_weights;
    int *perm;
    session s;
} fit_state;

static void fit_state_free(fit_state *f) {
    if (f->diag) nb__diag_close(f->diag); /* what was measured, even of a failed run */
    nb__diag_free(f->diag);
    nb__grad_sync_free(f->grads);
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
    } else if (step > 0 && s->g->sync) { /* the others would not run the pass again with it */
        snprintf(where, sizeof where, "the step ran with synchronized batch norm, so it is not run again to find "
                 "the node");
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
        nb__set_error(NB_ERR_NONFINITE, "fit: the loss is %g at epoch %d, step %ld: %s; lower the learning rate or clip the "
                           "gradients (allow_nonfinite trains on)", loss, epoch, step, where);
    else
        nb__set_error(NB_ERR_NONFINITE, "fit: the validation loss is %g after epoch %d: %s", loss, epoch, where);
}

/* Sets the rate (and the 1cycle momentum) for t. */
static void apply_schedule(fit_state *f, double t, float base_momentum) {
    if (!f->sched) return;
    nb_optimizer_set_lr(f->opt, nb_schedule_lr(f->sched, t));
    if (nb_optimizer_has_momentum(f->opt))
        nb_optimizer_set_momentum(f->opt, nb_schedule_momentum(f->sched, t, base_momentum));
}

nb_status nb_fit(nb_model *m, const nb_dataset *train, const nb_fit_opts *opts, nb_history *h) {
    nb_fit_opts o = opts ? *opts : nb_fit_defaults();
    nb_array arrays[2], varrays[2];
    bool self = o.n_losses == 0 && o.loss.target_is_input;
    if (train && !train->y && !self) train = NULL; /* no labels: empty for fit */
    nb_data data = dataset_data(train, self, arrays), vdata;
    if (o.validation) {
        if (o.validation->n < 1 || !o.validation->x || (!self && !o.validation->y)) {
            if (h) memset(h, 0, sizeof *h);
            nb__set_last_error("fit: the validation set is empty");
            return NB_ERROR;
        }
        if (o.validation->dim != (train ? train->dim : o.validation->dim)) {
            if (h) memset(h, 0, sizeof *h);
            nb__set_last_error("fit: validation data has %d features, training data %d", o.validation->dim,
                               train->dim);
            return NB_ERROR;
        }
        vdata = dataset_data(o.validation, self, varrays);
        o.validation_data = &vdata;
    }
    return nb_fit_data(m, &data, &o, h);
}

nb_status nb_fit_data(nb_model *m, const nb_data *train_all, const nb_fit_opts *opts, nb_history *h) {
    nb_fit_opts o = opts ? *opts : nb_fit_defaults();
    if (h) memset(h, 0, sizeof *h);
    if (!m) {
        nb__set_last_error("fit: model is NULL");
        return NB_ERROR;
    }
    if (check_opts(&o, train_all) != NB_OK) return NB_ERROR;
    if (o.batch_size == 0) o.batch_size = 32;
    const nb_fit_dist *dist = o.dist;
    if (dist && (dist->size < 1 || dist->rank < 0 || dist->rank >= dist->size || !dist->sum || !dist->sum_floats)) {
        nb__set_last_error("fit: dist: rank %d of %d, or a sum callback missing", dist->rank, dist->size);
        return NB_ERROR;
    }
    if (dist && dist->size == 1) dist = NULL;
    if (dist && dist->rank != 0) /* rank 0 alone speaks and writes */
        o.verbose = 0, o.checkpoint = NULL, o.diagnose = NULL;
    const bool writer = !dist || dist->rank == 0;
    bool started = false; /* every process past setup (a failure before is told to the others) */
    FILE *out = o.out ? o.out : stdout;
    if (train_all->n_inputs < 0 || train_all->n_inputs > NB_MODEL_MAX_IO || train_all->n_targets < 0 ||
        train_all->n_targets > NB_MODEL_MAX_IO) {
        nb__set_last_error("fit: %d input and %d target arrays (0 to %d each)", train_all->n_inputs,
                           train_all->n_targets, NB_MODEL_MAX_IO);
        return NB_ERROR;
    }

    /* Without a validation set, the last fraction is held out, unshuffled. */
    nb_data train = *train_all, held;
    nb_array split_arrays[4 * NB_MODEL_MAX_IO];
    const nb_data *val = o.validation_data;
    if (!val && o.validation_split > 0) {
        int nv = (int)(train_all->n * (double)o.validation_split);
        if (nv < 1 || nv >= train_all->n) {
            nb__set_last_error("fit: a validation split of %g leaves %d of %d examples for validation",
                               (double)o.validation_split, nv, train_all->n);
            return NB_ERROR;
        }
        split_data(train_all, nv, &train, &held, split_arrays);
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
        if (f.opt) nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory");
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
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory");
            goto fail;
        }
    }
    /* with processes, each runs the graph on its share of a batch */
    const int local_batch = dist ? (o.batch_size + dist->size - 1) / dist->size : o.batch_size;
    if (dist && dist->sync_batchnorm && ((train.n % o.batch_size && train.n % o.batch_size < dist->size) ||
                                         o.batch_size < dist->size)) {
        nb__set_last_error("fit: synchronized batch norm needs rows of every batch on each of the %d processes; "
                           "a batch of %d (the last of %d examples) leaves one without: choose another batch size",
                           dist->size, train.n % o.batch_size ? train.n % o.batch_size : o.batch_size, train.n);
        goto fail;
    }
    if (session_open(&f.s, m, &train, local_batch, false, o.seed, &o, true, "fit") != NB_OK) goto fail;
    if (dist && dist->sync_batchnorm) {
        f.s.sync = (nb_graph_sync){dist->sum, dist->user, 1.0};
        nb_graph_set_sync(f.s.g, &f.s.sync);
    }
    if (dist && !(f.grads = nb__grad_sync_new(dist, f.s.g, f.s.loss))) goto fail;
    const nb_loss_kind first_kind = f.s.out[f.s.first].lc.kind;
    const nb_metric_kind first_metric = metric_of(first_kind, f.s.out[f.s.first].metric);
    hist.metric = metric_name(first_kind, f.s.out[f.s.first].metric);
    hist.n_outputs = f.s.n_out;
    for (int k = 0; k < f.s.n_out; k++) {
        snprintf(hist.output_names[k], sizeof hist.output_names[k], "%s", nb_model_output_name(m, k));
        hist.output_metric[k] = f.s.out[k].loss ? metric_name(f.s.out[k].lc.kind, f.s.out[k].metric) : NULL;
    }
    if ((first_metric == NB_METRIC_MSE || first_metric == NB_METRIC_MAE) &&
        (o.monitor == NB_MONITOR_VAL_ACCURACY || o.monitor == NB_MONITOR_ACCURACY)) {
        nb__set_last_error("fit: an accuracy monitor with a regression loss, whose metric is the mean absolute "
                           "error: watch a loss");
        goto fail;
    }
    if (val && val->n < 1) {
        nb__set_last_error("fit: the validation set is empty");
        goto fail;
    }
    if (val && (val->n_inputs != train.n_inputs || val->n_targets != train.n_targets)) {
        nb__set_last_error("fit: validation data has %d input and %d target arrays, training data %d and %d",
                           val->n_inputs, val->n_targets, train.n_inputs, train.n_targets);
        goto fail;
    }
    for (int i = 0; val && i < train.n_inputs + train.n_targets; i++) {
        const nb_array *a = i < train.n_inputs ? &train.inputs[i] : &train.targets[i - train.n_inputs];
        const nb_array *b = i < train.n_inputs ? &val->inputs[i] : &val->targets[i - train.n_inputs];
        if (a->dim != b->dim || !b->data) {
            nb__set_last_error("fit: validation data has %d features, training data %d", b->dim, a->dim);
            goto fail;
        }
    }

    if (o.diagnose_every < 0) {
        nb__set_last_error("fit: diagnose_every is %ld, must be >= 0", o.diagnose_every);
        goto fail;
    }
    if (o.diagnose &&
        !(f.diag = nb__diag_new(m, f.s.layer_out, o.diagnose, o.diagnose_every ? o.diagnose_every : steps,
                                o.verbose > 0 ? out : NULL)))
        goto fail;
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
    if (dist) { /* every process ready, with the same model, data and options */
        double ready[1] = {0};
        started = true;
        if (!dist_sum(dist, ready, 1)) goto fail;
        if (ready[0] > 0) {
            nb__set_last_error("fit: another process failed to start");
            goto fail;
        }
        uint64_t setup = weights_hash(m);
        const long shape[] = {train.n, train.n_inputs, train.n_targets, o.batch_size, o.epochs, first_epoch, step_count};
        setup = fnv(fnv(setup, shape, sizeof shape), &o.seed, sizeof o.seed);
        for (int i = 0; i < train.n_inputs; i++) setup = fnv(setup, &train.inputs[i].dim, sizeof(int));
        if (!dist_same(dist, setup, "the models, data sizes or options")) goto fail;
    }
    for (int epoch = first_epoch; epoch <= o.epochs; epoch++) {
        nb_epoch_metrics em = {.epoch = epoch, .has_validation = val != NULL};
        double t0 = nb__now();
        sums u = {0};
        nb__progress_epoch(&prog, epoch, o.epochs, t0);
        nb_shuffle(f.perm, train.n, o.seed, (uint64_t)epoch);
        if (f.grads && !replan_sums(dist, f.grads, epoch)) goto fail; /* a callback may have (un)frozen layers */
        if (o.schedule_per_epoch) apply_schedule(&f, epoch - 1, base_momentum);
        for (int k = 0; k < steps; k++) {
            int start = k * o.batch_size, b = train.n - start < o.batch_size ? train.n - start : o.batch_size;
            if (!o.schedule_per_epoch) apply_schedule(&f, (double)step_count, base_momentum);
            int lo, n_local;
            share_of(dist, start, b, &lo, &n_local);
            if (f.s.g->sync) f.s.sync.share = (double)n_local / b;
            if (dist) nb_graph_set_row_offset(f.s.g, (uint64_t)(lo - start)); /* dropout as one process draws it */
            if (f.grads) nb__grad_sync_begin(f.grads, (float)n_local / (float)b);
            if (n_local > 0) {
                session_feed(&f.s, &train, f.perm, lo, n_local);
                nb_forward(f.s.g, NB_TRAINING);
                nb_backward(f.s.g, f.s.loss); /* starts the gradients' sums as it goes */
            }
            if (f.grads && !nb__grad_sync_end(f.grads)) goto fail;
            bool failed = nb_graph_status(f.s.g) != NB_OK;
            float step_loss = n_local > 0 && !failed ? nb_node_value(f.s.loss)[0] : 0;
            sums step = {0};
            if (n_local > 0 && !failed) sums_add(&step, &f.s, n_local);
            if (dist) { /* the batch's sums, and whether any process failed, everywhere */
                double bad[1] = {failed ? flag_of(dist) : 0};
                if (!dist_sum(dist, bad, 1)) goto fail;
                if (bad[0] > 0 && !failed) {
                    nb__set_last_error("fit: process %d failed at epoch %d, step %d; this one stops with it",
                                       lowest_flagged(bad[0]), epoch, k + 1);
                    goto fail;
                }
                if (!failed && !sums_reduce(dist, &step, f.s.n_out)) goto fail;
                step_loss = (float)(step.total / b);
            }
            if (failed) {
                session_error(&f.s, "fit");
                goto fail;
            }
            if (!isfinite(step_loss) && !o.allow_nonfinite) {
                report_divergence(&f.s, m, step_loss, epoch, k + 1);
                nb__progress_diverged(&prog, k + 1, step_loss);
                diverged_step = k + 1;
                goto diverged;
            }
            if (dist && !dist_moving_stats(dist, m)) goto fail;
            const bool diag_step = nb__diag_due(f.diag, step_count);
            if (diag_step) nb__diag_before_update(f.diag);
            nb_optimizer_step(f.opt);
            nb_model_constrain(m);
            if (diag_step && !nb__diag_after_update(f.diag, step_count, epoch)) goto fail;
            step_count++;
            u.total += step.total;
            for (int o_ = 0; o_ < f.s.n_out; o_++) u.loss[o_] += step.loss[o_], u.metric[o_] += step.metric[o_];
            int seen = start + b;
            nb__progress_step(&prog, k + 1, u.total / seen, u.metric[f.s.first] / seen, nb__now());
        }
        em.seconds = nb__now() - t0;
        em.step_seconds = em.seconds / steps;
        sums_store(&u, &f.s, train.n, false, &em);
        /* (inference: batch norm uses its running statistics, nothing is summed) */
        if (val && session_evaluate_shared(&f.s, val, true, &em, dist) != NB_OK) {
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
            if (o.checkpoint && nb_model_save(m, o.checkpoint) != NB_OK) goto epoch_failed;
        } else {
            wait++;
        }
        if (o.backup && writer) {
            pt.epochs_done = epoch, pt.step_count = step_count, pt.graph_step = f.s.g->step;
            pt.opt_steps = nb_optimizer_steps(f.opt), pt.nadam_product = nb_optimizer_nadam_product(f.opt);
            pt.lr = nb_optimizer_lr(f.opt), pt.momentum = nb_optimizer_momentum(f.opt), pt.best = best, pt.wait = wait;
            nb_schedule_get_state(f.sched, &pt.sched_lr, &pt.sched_best, &pt.sched_wait);
            if (!nb__backup_write(o.backup, m, f.opt, f.best_weights, best_floats, &hist, &pt)) goto epoch_failed;
        }
        bool stop = o.on_epoch && !o.on_epoch(&em, o.user);
        if (dist) { /* one decision for all: a write that failed, a callback that stops, the same weights */
            double v[2] = {0, stop};
            if (!dist_sum(dist, v, 2)) goto fail;
            if (v[0] > 0) {
                nb__set_last_error("fit: process 0 failed to write its checkpoint or backup after epoch %d", epoch);
                goto fail;
            }
            stop = v[1] > 0;
            if (dist->check_weights && !dist_same(dist, weights_hash(m), "the weights")) goto fail;
        }
        if (o.patience > 0 && wait >= o.patience) {
            hist.stopped_early = true;
            if (o.verbose > 0) fprintf(out, "Epoch %d: early stopping (best epoch %d)\n", epoch, hist.best_epoch);
            stop = true;
        }
        if (stop) break;
    }
    if (f.best_weights && hist.best_epoch > 0) snapshot(m, f.best_weights, false);
    if (f.diag && !nb__diag_close(f.diag)) goto fail;
    if (o.backup && writer) unlink(o.backup); /* done: the next fit with this backup starts afresh, as Keras's */
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
epoch_failed:
    if (dist) { /* tell the others, which wait at the epoch's end */
        char why[512];
        snprintf(why, sizeof why, "%s", nb_last_error());
        double v[2] = {1, 0};
        dist_sum(dist, v, 2);
        nb__set_last_error("%s", why);
    }
fail:
    if (dist && !started) { /* the others wait for this one at the start */
        char why[512];
        snprintf(why, sizeof why, "%s", nb_last_error());
        double ready[1] = {1};
        dist_sum(dist, ready, 1);
        nb__set_last_error("%s", why);
    }
    fit_state_free(&f);
    nb_history_free(&hist);
    return NB_ERROR;
}

/* ---- a step of a custom loop ---- */

struct nb_trainer {
    nb_model *m;
    session s;
    nb_optimizer *opt;
    nb_schedule *sched;
    float base_momentum;
    bool allow_nonfinite;
    long steps;
    int n_inputs, n_targets, dims[2 * NB_MODEL_MAX_IO]; /* the layout every batch keeps */
    /* with processes (opts->dist): each step is of the batches all of them
     * feed, one global batch in rank order */
    const nb_fit_dist *dist;
    nb__grad_sync *grads;
    double *shares; /* per process: its rows, its plan's hash (two halves); then the failure flags */
    uint64_t trainable; /* the tensors' trainable flags the sums were planned for */
};

/* A hash of which of m's tensors are trainable: the sums' plan changes
 * only with it. */
static uint64_t trainable_flags(nb_model *m) {
    nb_tensor *const *t;
    int n = nb_model_tensors(m, &t);
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) h = fnv(h, &t[i]->trainable, sizeof t[i]->trainable);
    return h;
}

/* A trainer's setup is one decision of all its processes: any that failed
 * (ok false, its error set) makes every one fail, and the models must be
 * the same bits as rank 0's. */
static bool trainer_start(nb_trainer *t, bool ok) {
    double failed[1] = {ok ? 0 : flag_of(t->dist)};
    if (!dist_sum(t->dist, failed, 1)) return false;
    if (!ok) return false;
    if (failed[0] > 0) {
        nb__set_last_error("trainer: process %d failed to start; this one stops with it", lowest_flagged(failed[0]));
        return false;
    }
    return dist_same(t->dist, weights_hash(t->m), "the models' weights");
}

/* A trainer refused before its processes meet still tells them (the
 * first sum of trainer_start), so that none waits for it. */
static nb_trainer *refused(const nb_fit_dist *d) {
    if (d && d->size > 1 && d->rank >= 0 && d->rank < d->size && d->sum) {
        double failed[1] = {flag_of(d)};
        d->sum(d->user, failed, 1);
    }
    return NULL;
}

nb_trainer *nb_trainer_new(nb_model *m, const nb_data *layout, const nb_fit_opts *opts) {
    nb_fit_opts o = opts ? *opts : nb_fit_defaults();
    if (!m || !layout) {
        nb__set_last_error("trainer: %s is NULL", !m ? "model" : "layout");
        return refused(o.dist);
    }
    if (o.batch_size < 0 || layout->n_inputs < 0 || layout->n_inputs > NB_MODEL_MAX_IO || layout->n_targets < 0 ||
        layout->n_targets > NB_MODEL_MAX_IO) {
        nb__set_last_error("trainer: batch size %d or %d input and %d target arrays out of range", o.batch_size,
                           layout->n_inputs, layout->n_targets);
        return refused(o.dist);
    }
    if (o.batch_size == 0) o.batch_size = 32;
    nb_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "trainer: out of memory");
        return refused(o.dist);
    }
    /* the layout's arrays need not hold data yet: the graph is built from sizes */
    static const float none[1];
    nb_array arrays[2 * NB_MODEL_MAX_IO];
    for (int i = 0; i < layout->n_inputs + layout->n_targets; i++) {
        const nb_array *a = i < layout->n_inputs ? &layout->inputs[i] : &layout->targets[i - layout->n_inputs];
        arrays[i] = *a;
        if (!arrays[i].data) arrays[i].data = none;
    }
    nb_data shape = {1, layout->n_inputs, arrays, layout->n_targets, arrays + layout->n_inputs};
    t->m = m;
    t->allow_nonfinite = o.allow_nonfinite;
    t->n_inputs = layout->n_inputs, t->n_targets = layout->n_targets;
    for (int i = 0; i < t->n_inputs; i++) t->dims[i] = layout->inputs[i].dim;
    for (int i = 0; i < t->n_targets; i++) t->dims[NB_MODEL_MAX_IO + i] = layout->targets[i].dim;
    nb_tensor *const *tensors;
    int n_tensors = nb_model_tensors(m, &tensors);
    const nb_fit_dist *d = o.dist;
    if (d && (d->size < 1 || d->rank < 0 || d->rank >= d->size || !d->sum || !d->sum_floats)) {
        nb__set_last_error("trainer: dist: rank %d of %d, or a sum callback missing", d->rank, d->size);
        nb_trainer_free(t);
        return NULL;
    }
    t->dist = d && d->size > 1 ? d : NULL;
    bool ok = session_open(&t->s, m, &shape, o.batch_size, false, o.seed, &o, true, "trainer") == NB_OK &&
              (t->opt = nb_optimizer_new(&o.optimizer, n_tensors, tensors)) &&
              (!o.use_schedule || (t->sched = nb_schedule_new(&o.schedule)));
    if (ok && t->dist) {
        if (t->dist->sync_batchnorm) {
            t->s.sync = (nb_graph_sync){t->dist->sum, t->dist->user, 1.0};
            nb_graph_set_sync(t->s.g, &t->s.sync);
        }
        ok = (t->grads = nb__grad_sync_new(t->dist, t->s.g, t->s.loss)) != NULL;
        t->trainable = trainable_flags(m);
        if (ok && !(t->shares = calloc(3 * (size_t)t->dist->size + 1, sizeof *t->shares))) {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "trainer: out of memory");
            ok = false;
        }
    }
    if (t->dist ? !trainer_start(t, ok) : !ok) {
        nb_trainer_free(t);
        return NULL;
    }
    t->base_momentum = nb_optimizer_momentum(t->opt);
    return t;
}

/* One step of processes together: each feeds its share of the global
 * batch (any number of rows, 0 too); the shares are laid end to end in
 * rank order, each weighted by its rows in the sum of the gradients, as
 * fit does. Every process reaches every sum, whatever failed on it. */
static nb_status dist_step(nb_trainer *t, const nb_data *batch, bool bad, double *loss) {
    const nb_fit_dist *d = t->dist;
    const int P = d->size;
    double *v = t->shares;
    /* plan again only when a layer was frozen or unfrozen since, not at every step */
    const uint64_t flags = trainable_flags(t->m);
    const bool planned = flags == t->trainable || nb__grad_sync_refresh(t->grads);
    if (planned) t->trainable = flags;
    const uint64_t plan = planned ? nb__grad_sync_plan_hash(t->grads) : 0;
    memset(v, 0, (3 * (size_t)P + 1) * sizeof *v);
    const int n = bad ? 0 : batch->n;
    v[3 * d->rank] = n, v[3 * d->rank + 1] = (double)(plan >> 32), v[3 * d->rank + 2] = (double)(plan & 0xffffffffu);
    v[3 * P] = bad || !planned ? flag_of(d) : 0;
    if (!dist_sum(d, v, 3 * P + 1)) return NB_ERROR;
    if (bad || !planned) return NB_ERROR; /* its own error stands */
    const long step = t->steps + 1;
    if (v[3 * P] > 0) {
        nb__set_last_error("train step: process %d failed at step %ld; this one stops with it",
                           lowest_flagged(v[3 * P]), step);
        return NB_ERROR;
    }
    double total = 0, before = 0;
    for (int r = 0; r < P; r++) {
        if (v[3 * r + 1] != v[1] || v[3 * r + 2] != v[2]) {
            nb__set_last_error("train step: the trainable tensors differ between the processes: rank %d's are not "
                               "rank 0's", r);
            return NB_ERROR;
        }
        if (r < d->rank) before += v[3 * r];
        total += v[3 * r];
        if (d->sync_batchnorm && v[3 * r] == 0) {
            nb__set_last_error("train step: synchronized batch norm needs rows on every process; process %d has "
                               "none at step %ld", r, step);
            return NB_ERROR;
        }
    }
    if (total < 1) {
        nb__set_last_error("train step: no process fed a row at step %ld", step);
        return NB_ERROR;
    }
    if (t->s.g->sync) t->s.sync.share = n / total;
    nb_graph_set_row_offset(t->s.g, (uint64_t)before); /* dropout as one process draws it */
    nb__grad_sync_begin(t->grads, (float)(n / total));
    if (n > 0) {
        session_feed(&t->s, batch, NULL, 0, n);
        nb_forward(t->s.g, NB_TRAINING);
        nb_backward(t->s.g, t->s.loss);
    }
    if (!nb__grad_sync_end(t->grads)) return NB_ERROR;
    const bool failed = nb_graph_status(t->s.g) != NB_OK;
    double end[2] = {failed ? flag_of(d) : 0, n > 0 && !failed ? (double)nb_node_value(t->s.loss)[0] * n : 0};
    if (!dist_sum(d, end, 2)) return NB_ERROR;
    if (failed) return session_error(&t->s, "train step");
    if (end[0] > 0) {
        nb__set_last_error("train step: process %d failed at step %ld; this one stops with it", lowest_flagged(end[0]),
                           step);
        return NB_ERROR;
    }
    *loss = end[1] / total;
    return NB_OK;
}

nb_status nb_train_step(nb_trainer *t, const nb_data *batch, double *loss) {
    if (!t || !batch) {
        nb__set_last_error("train step: %s is NULL", !t ? "trainer" : "batch");
        return NB_ERROR;
    }
    bool same = batch->n_inputs == t->n_inputs && batch->n_targets == t->n_targets;
    const int least = t->dist ? 0 : 1; /* a process may have no rows of a global batch */
    for (int i = 0; same && i < t->n_inputs; i++) same = batch->inputs[i].dim == t->dims[i] && batch->inputs[i].data;
    for (int i = 0; same && i < t->n_targets; i++)
        same = batch->targets[i].dim == t->dims[NB_MODEL_MAX_IO + i] && batch->targets[i].data;
    bool bad = !same || batch->n < least || batch->n > t->s.batch;
    if (!same)
        nb__set_last_error("train step: the batch's arrays are not laid out as the trainer's (their number, order "
                           "and sizes), or one is NULL");
    else if (bad)
        nb__set_last_error("train step: a batch of %d examples; the trainer takes %d to %d", batch->n, least,
                           t->s.batch);
    if (bad && !t->dist) return NB_ERROR;
    if (t->sched) {
        nb_optimizer_set_lr(t->opt, nb_schedule_lr(t->sched, (double)t->steps));
        if (nb_optimizer_has_momentum(t->opt))
            nb_optimizer_set_momentum(t->opt, nb_schedule_momentum(t->sched, (double)t->steps, t->base_momentum));
    }
    double l;
    if (t->dist) {
        if (dist_step(t, batch, bad, &l) != NB_OK) return NB_ERROR;
    } else {
        session_feed(&t->s, batch, NULL, 0, batch->n);
        nb_forward(t->s.g, NB_TRAINING);
        nb_backward(t->s.g, t->s.loss);
        if (nb_graph_status(t->s.g) != NB_OK) return session_error(&t->s, "train step");
        l = nb_node_value(t->s.loss)[0];
    }
    if (loss) *loss = l;
    if (!isfinite(l) && !t->allow_nonfinite) {
        nb__set_error(NB_ERR_NONFINITE, "train step: the loss is %g at step %ld; the weights were not updated (allow_nonfinite "
                           "trains on)", (double)l, t->steps + 1);
        return NB_ERROR;
    }
    nb_optimizer_step(t->opt);
    nb_model_constrain(t->m);
    if (t->dist && !dist_moving_stats(t->dist, t->m)) return NB_ERROR;
    t->steps++;
    return NB_OK;
}

nb_optimizer *nb_trainer_optimizer(nb_trainer *t) { return t ? t->opt : NULL; }
long nb_trainer_steps(const nb_trainer *t) { return t ? t->steps : 0; }

void nb_trainer_free(nb_trainer *t) {
    if (!t) return;
    nb__grad_sync_free(t->grads);
    free(t->shares);
    session_close(&t->s);
    nb_optimizer_free(t->opt);
    nb_schedule_free(t->sched);
    free(t);
}

/* ---- prediction ---- */

nb_status nb_predict_data(nb_model *m, const nb_data *d, int batch_size, float *const *out) {
    session s;
    if (!m || !out) {
        nb__set_last_error("predict: %s is NULL", !m ? "model" : "out");
        return NB_ERROR;
    }
    if (batch_size < 1) batch_size = 32;
    if (session_open(&s, m, d, batch_size, false, 0, NULL, false, "predict") != NB_OK) return NB_ERROR;
    nb_status st = NB_OK;
    for (int k = 0; k < s.n_out; k++)
        if (!out[k]) {
            nb__set_last_error("predict: out[%d] is NULL", k);
            st = NB_ERROR;
        }
    for (int start = 0; st == NB_OK && start < d->n; start += batch_size) {
        const int b = d->n - start < batch_size ? d->n - start : batch_size;
        session_feed(&s, d, NULL, start, b);
        if ((st = nb_forward(s.g, NB_INFERENCE)) != NB_OK) {
            session_error(&s, "predict");
            break;
        }
        for (int k = 0; k < s.n_out; k++) {
            const size_t per = (size_t)s.out[k].per;
            memcpy(out[k] + (size_t)start * per, nb_node_value(s.out[k].z), sizeof(float) * per * (size_t)b);
        }
    }
    session_close(&s);
    return st;
}

nb_status nb_predict(nb_model *m, const nb_dataset *d, int batch_size, float *out) {
    nb_array arrays[2];
    nb_data data = dataset_data(d, true, arrays);
    if (m && nb_model_output_count(m) != 1) {
        nb__set_last_error("predict: the model has %d outputs; nb_predict_data gives them all",
                           nb_model_output_count(m));
        return NB_ERROR;
    }
    return nb_predict_data(m, &data, batch_size, &out);
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
    nb_array arrays[2];
    nb_data data = dataset_data(d, false, arrays);
    if (session_open(&s, m, &data, batch_size, true, seed, NULL, false, "predict_mc") != NB_OK) return NB_ERROR;
    /* class probabilities from the logits, whether or not the model ends in a softmax */
    nb_node *logits = s.out[0].z;
    if (strcmp(nb_node_op(logits), "softmax") == 0) logits = logits->in[0];
    const int c = (int)(nb_node_size(logits) / (size_t)batch_size);
    double *sum = malloc(sizeof(double) * (size_t)batch_size * c), *sq = malloc(sizeof(double) * (size_t)batch_size * c);
    double *e = malloc(sizeof(double) * (size_t)c);
    if (!sum || !sq || !e) {
        free(sum), free(sq), free(e), session_close(&s);
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "predict_mc: out of memory");
        return NB_ERROR;
    }
    long correct = 0;
    nb_status st = NB_OK;
    for (int start = 0; start < d->n && st == NB_OK; start += batch_size) {
        int b = d->n - start < batch_size ? d->n - start : batch_size;
        session_feed(&s, &data, NULL, start, b);
        memset(sum, 0, sizeof(double) * (size_t)b * c);
        memset(sq, 0, sizeof(double) * (size_t)b * c);
        for (int k = 0; k < samples && st == NB_OK; k++) {
            if ((st = nb_forward(s.g, NB_INFERENCE)) != NB_OK) break;
            const float *z = nb_node_value(logits);
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
