/* train/diagnose.c — gradient-health diagnostics (the chapter's vanishing
 * and exploding gradients, saturation and dying ReLUs, made visible).
 *
 * For each layer on a diagnostic step, from that training step's values:
 *   act_mean, act_std  over every value of the layer's output
 *   saturated          the fraction of outputs within 1% of the range's ends
 *                      (sigmoid below 0.01 or above 0.99, tanh beyond ±0.99;
 *                      0 for other activations)
 *   dead               the fraction of units (output features) that are 0 for
 *                      every example of the batch (the ReLU family; 0 else)
 *   grad_norm          the L2 norm of the gradient of the layer's trainable
 *                      tensors together
 *   update_ratio       ||w_after - w_before|| / ||w_before|| over them
 * Warnings (at most one of each kind per epoch): vanishing, the first
 * weighted layer's gradient norm below 1e-3 of the last one's; exploding, a
 * layer's norm above 1e3 times its value at step 0; dead, more than half of
 * a layer's units dead. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "graph/file.h"
#include "graph/internal.h"
#include "train/diagnose.h"

#define VANISH 1e-3
#define EXPLODE 1e3

typedef enum { ACT_OTHER, ACT_SIGMOID, ACT_TANH, ACT_RELU } act_kind;

typedef struct layer_diag {
    const nb_layer *l;
    nb_node *out;
    act_kind act;
    int n_w;                /* trainable tensors */
    nb_tensor *w[8];
    float *before;          /* their values before the update */
    double mean, sd, saturated, dead, grad, ratio, grad0;
} layer_diag;

struct nb__diag {
    nb_atomic_file file;
    FILE *warn;
    long every;
    int n;
    layer_diag *layers;
    char *dead_rows;        /* a unit's "seen alive" flags, for the widest layer */
    int warned_epoch[3];    /* the epoch of the last warning of each kind */
    bool have_step0;
};

/* The layer's activation from its config's "activation" field. */
static act_kind activation_of(const nb_layer *l) {
    const nb_layer_class *cls = nb_layer_class_of(l);
    for (int i = 0; i < cls->n_fields; i++)
        if (cls->fields[i].type == NB_FIELD_ACTIVATION) {
            const char *a = (const char *)nb_layer_config(l) + cls->fields[i].offset;
            if (!strcmp(a, "sigmoid")) return ACT_SIGMOID;
            if (!strcmp(a, "tanh")) return ACT_TANH;
            if (!strcmp(a, "relu")) return ACT_RELU;
        }
    return ACT_OTHER;
}

void nb__diag_free(nb__diag *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) free(d->layers[i].before);
    free(d->layers);
    free(d->dead_rows);
    char err[256];
    if (d->file.f) nb__atomic_commit(&d->file, false, err, sizeof err);
    free(d);
}

nb__diag *nb__diag_new(nb_model *m, nb_node *const *layer_out, const char *path, long every, FILE *warn) {
    nb__diag *d = calloc(1, sizeof *d);
    const int n = nb_model_layer_count(m);
    if (!d || !(d->layers = calloc((size_t)(n ? n : 1), sizeof *d->layers))) {
        free(d);
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory for the diagnostics");
        return NULL;
    }
    d->every = every < 1 ? 1 : every;
    d->warn = warn;
    d->n = n;
    size_t widest = 1;
    for (int i = 0; i < n; i++) {
        layer_diag *ld = &d->layers[i];
        ld->l = nb_model_layer(m, i);
        ld->out = layer_out[i];
        ld->act = activation_of(ld->l);
        size_t floats = 0;
        for (int t = 0; t < nb_layer_tensor_count(ld->l) && ld->n_w < 8; t++) {
            nb_tensor *w = nb_layer_tensor(ld->l, t);
            if (w->trainable) ld->w[ld->n_w++] = w, floats += w->size;
        }
        if (floats && !(ld->before = malloc(floats * sizeof(float)))) {
            nb__diag_free(d);
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory for the diagnostics");
            return NULL;
        }
        if (ld->out) {
            nb_shape s = nb_node_shape(ld->out);
            if ((size_t)s.dim[s.rank - 1] > widest) widest = (size_t)s.dim[s.rank - 1];
        }
    }
    char err[256];
    if (!(d->dead_rows = malloc(widest)) || !nb__atomic_open(&d->file, path, err, sizeof err)) {
        if (d->dead_rows) nb__set_error(nb__errno_kind(errno), "fit: diagnostics: %s: %s", path, err);
        else nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory for the diagnostics");
        d->file.f = NULL;
        nb__diag_free(d);
        return NULL;
    }
    fprintf(d->file.f, "step,epoch,layer,name,act_mean,act_std,saturated,dead,grad_norm,update_ratio\n");
    d->warned_epoch[0] = d->warned_epoch[1] = d->warned_epoch[2] = -1;
    return d;
}

bool nb__diag_due(const nb__diag *d, long step) { return d && step % d->every == 0; }

/* Mean, deviation, saturation and dead units of the layer's output. */
static void activations(nb__diag *d, layer_diag *ld) {
    ld->mean = ld->sd = ld->saturated = ld->dead = 0;
    if (!ld->out) return;
    const float *y = nb_node_value(ld->out);
    const nb_shape s = nb_node_shape(ld->out);
    const size_t size = nb_node_size(ld->out), units = (size_t)s.dim[s.rank - 1], rows = size / units;
    double sum = 0, sq = 0, sat = 0;
    for (size_t i = 0; i < size; i++) sum += y[i];
    const double mean = sum / (double)size;
    for (size_t i = 0; i < size; i++) {
        const double v = y[i] - mean;
        sq += v * v;
        if (ld->act == ACT_SIGMOID) sat += y[i] < 0.01f || y[i] > 0.99f;
        else if (ld->act == ACT_TANH) sat += fabsf(y[i]) > 0.99f;
    }
    ld->mean = mean, ld->sd = sqrt(sq / (double)size), ld->saturated = sat / (double)size;
    if (ld->act != ACT_RELU) return;
    memset(d->dead_rows, 0, units);
    for (size_t r = 0; r < rows; r++)
        for (size_t u = 0; u < units; u++) d->dead_rows[u] |= y[r * units + u] != 0;
    size_t dead = 0;
    for (size_t u = 0; u < units; u++) dead += !d->dead_rows[u];
    ld->dead = (double)dead / (double)units;
}

void nb__diag_before_update(nb__diag *d) {
    for (int i = 0; i < d->n; i++) {
        layer_diag *ld = &d->layers[i];
        activations(d, ld);
        double g = 0;
        float *at = ld->before;
        for (int t = 0; t < ld->n_w; t++) {
            const nb_tensor *w = ld->w[t];
            for (size_t k = 0; w->grad && k < w->size; k++) g += (double)w->grad[k] * w->grad[k];
            memcpy(at, w->data, w->size * sizeof(float));
            at += w->size;
        }
        ld->grad = sqrt(g);
    }
}

static void warn(nb__diag *d, int kind, int epoch, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void warn(nb__diag *d, int kind, int epoch, const char *fmt, ...) {
    if (!d->warn || d->warned_epoch[kind] == epoch) return;
    d->warned_epoch[kind] = epoch;
    va_list ap;
    va_start(ap, fmt);
    fprintf(d->warn, "Warning: ");
    vfprintf(d->warn, fmt, ap);
    fprintf(d->warn, "\n");
    va_end(ap);
}

bool nb__diag_after_update(nb__diag *d, long step, int epoch) {
    int first = -1, last = -1;
    for (int i = 0; i < d->n; i++) {
        layer_diag *ld = &d->layers[i];
        double dw = 0, w2 = 0;
        const float *at = ld->before;
        for (int t = 0; t < ld->n_w; t++) {
            const nb_tensor *w = ld->w[t];
            for (size_t k = 0; k < w->size; k++) {
                const double diff = (double)w->data[k] - at[k];
                dw += diff * diff, w2 += (double)at[k] * at[k];
            }
            at += w->size;
        }
        ld->ratio = w2 > 0 ? sqrt(dw / w2) : 0;
        if (!d->have_step0) ld->grad0 = ld->grad;
        if (ld->n_w) {
            if (first < 0) first = i;
            last = i;
        }
        fprintf(d->file.f, "%ld,%d,%d,%s,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", step, epoch, i, nb_layer_name(ld->l), ld->mean,
                ld->sd, ld->saturated, ld->dead, ld->grad, ld->ratio);
        if (ld->grad0 > 0 && ld->grad > EXPLODE * ld->grad0)
            warn(d, 1, epoch, "exploding gradients at step %ld: layer '%s' has a gradient norm %.3g, %.0f times its "
                 "%.3g at step 0", step, nb_layer_name(ld->l), ld->grad, ld->grad / ld->grad0, ld->grad0);
        if (ld->dead > 0.5)
            warn(d, 2, epoch, "dying ReLUs at step %ld: %.0f%% of layer '%s''s units are 0 for the whole batch", step,
                 100 * ld->dead, nb_layer_name(ld->l));
    }
    d->have_step0 = true;
    if (first >= 0 && last > first && d->layers[first].grad < VANISH * d->layers[last].grad)
        warn(d, 0, epoch, "vanishing gradients at step %ld: the first layer's gradient norm %.3g is below 1e-3 of the "
             "last's (%.3g)", step, d->layers[first].grad, d->layers[last].grad);
    if (ferror(d->file.f)) {
        nb__set_error(NB_ERR_IO, "fit: diagnostics: a write failed");
        return false;
    }
    return true;
}

bool nb__diag_close(nb__diag *d) {
    if (!d->file.f) return true;
    char err[256];
    bool ok = nb__atomic_commit(&d->file, true, err, sizeof err);
    d->file.f = NULL;
    if (!ok) nb__set_error(nb__errno_kind(errno), "fit: diagnostics: %s", err);
    return ok;
}
