/* train/backup.c — a fit's state as a state dict (see backup.h): the
 * model's tensors by name, the optimizer's arrays as
 * "optimizer/<the tensor's index>/<m|v|...>",
 * the best weights as "fit/best", and the scalars and the history as
 * float arrays that hold 64-bit values bit for bit ("fit/point",
 * "fit/history"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "train/backup.h"

#define BACKUP_VERSION 2 /* 2: each output's losses and metrics in the history */

/* Scalars in the order they are stored, each a double's bits in 2 floats. */
enum { P_VERSION, P_SEED, P_BATCH, P_N, P_EPOCHS, P_STEPS, P_GSTEP, P_OSTEPS, P_NADAM, P_LR, P_MOM, P_BEST, P_WAIT,
       P_SLR, P_SBEST, P_SWAIT, P_HIST, P_BEST_EPOCH, P_SECONDS, P_COUNT };
enum { E_EPOCH, E_LOSS, E_ACC, E_VLOSS, E_VACC, E_HASV, E_LR, E_SECONDS, E_STEPSEC, E_NOUT,
       E_OUTS, /* then output_loss, output_metric, val_output_loss, val_output_metric: NB_MODEL_MAX_IO each */
       E_COUNT = E_OUTS + 4 * NB_MODEL_MAX_IO };

static void put(float *a, int i, double v) { memcpy(a + 2 * i, &v, sizeof v); }
static double get(const float *a, int i) {
    double v;
    memcpy(&v, a + 2 * i, sizeof v);
    return v;
}
static void put_u64(float *a, int i, uint64_t v) { memcpy(a + 2 * i, &v, sizeof v); }
static uint64_t get_u64(const float *a, int i) {
    uint64_t v;
    memcpy(&v, a + 2 * i, sizeof v);
    return v;
}

/* A tensor named name of size floats copied from src (NULL: zeroed). */
static nb_tensor *array(const char *name, size_t size, const float *src) {
    nb_tensor *t = nb_tensor_new(1, (int[]){(int)(size ? size : 1)});
    if (!t) return NULL;
    snprintf(t->name, sizeof t->name, "%s", name);
    if (src) memcpy(t->data, src, size * sizeof(float));
    return t;
}

/* The optimizer's arrays as tensors named after their parameters. */
static int optimizer_arrays(nb_optimizer *opt, nb_tensor **out, bool copy) {
    const int n = nb_optimizer_state_count(opt);
    for (int i = 0; i < n; i++) {
        nb_optimizer_state_entry e;
        nb_optimizer_state(opt, i, &e);
        char name[64];
        snprintf(name, sizeof name, "optimizer/%d/%s", e.param_index, e.name);
        if (!(out[i] = array(name, e.size, copy ? e.data : NULL))) return -1;
    }
    return n;
}

bool nb__backup_write(const char *path, nb_model *m, nb_optimizer *opt, const float *best, size_t best_floats,
                      const nb_history *h, const nb_fit_point *p) {
    nb_tensor *const *mt;
    const int nm = nb_model_tensors(m, &mt), no = nb_optimizer_state_count(opt);
    nb_tensor **all = calloc((size_t)(nm + no + 3), sizeof *all);
    bool ok = all != NULL;
    int n = 0;
    for (int i = 0; ok && i < nm; i++) all[n++] = mt[i]; /* borrowed, not freed below */
    const int own = n;
    ok = ok && optimizer_arrays(opt, all + n, true) == no;
    if (ok) n += no;
    float point[2 * P_COUNT];
    put(point, P_VERSION, BACKUP_VERSION), put_u64(point, P_SEED, p->seed), put(point, P_BATCH, p->batch);
    put(point, P_N, p->n), put(point, P_EPOCHS, p->epochs_done), put(point, P_STEPS, (double)p->step_count);
    put_u64(point, P_GSTEP, p->graph_step), put(point, P_OSTEPS, (double)p->opt_steps);
    put(point, P_NADAM, p->nadam_product), put(point, P_LR, p->lr), put(point, P_MOM, p->momentum);
    put(point, P_BEST, p->best), put(point, P_WAIT, p->wait), put(point, P_SLR, p->sched_lr);
    put(point, P_SBEST, p->sched_best), put(point, P_SWAIT, p->sched_wait), put(point, P_HIST, h->n_epochs);
    put(point, P_BEST_EPOCH, h->best_epoch), put(point, P_SECONDS, h->train_seconds);
    ok = ok && (all[n++] = array("fit/point", 2 * P_COUNT, point)) != NULL;
    nb_tensor *hist = ok ? array("fit/history", (size_t)2 * E_COUNT * h->n_epochs, NULL) : NULL;
    ok = ok && (all[n++] = hist) != NULL;
    for (int e = 0; ok && e < h->n_epochs; e++) {
        const nb_epoch_metrics *em = &h->epochs[e];
        float *r = hist->data + 2 * E_COUNT * e;
        put(r, E_EPOCH, em->epoch), put(r, E_LOSS, em->loss), put(r, E_ACC, em->accuracy);
        put(r, E_VLOSS, em->val_loss), put(r, E_VACC, em->val_accuracy), put(r, E_HASV, em->has_validation);
        put(r, E_LR, em->lr), put(r, E_SECONDS, em->seconds), put(r, E_STEPSEC, em->step_seconds);
        put(r, E_NOUT, em->n_outputs);
        for (int k = 0; k < NB_MODEL_MAX_IO; k++) {
            put(r, E_OUTS + k, em->output_loss[k]), put(r, E_OUTS + NB_MODEL_MAX_IO + k, em->output_metric[k]);
            put(r, E_OUTS + 2 * NB_MODEL_MAX_IO + k, em->val_output_loss[k]);
            put(r, E_OUTS + 3 * NB_MODEL_MAX_IO + k, em->val_output_metric[k]);
        }
    }
    if (ok && best) ok = (all[n++] = array("fit/best", best_floats, best)) != NULL;
    if (!all) nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory for the backup");
    ok = ok && nb_tensors_save(path, n, all) == NB_OK;
    for (int i = own; all && i < n; i++) nb_tensor_free(all[i]);
    free(all);
    return ok;
}

static bool load(const char *path, int n, nb_tensor *const *t) {
    const nb_load_options skip = {.skip_unexpected = true};
    if (nb_tensors_load(path, n, t, &skip, NULL) == NB_OK) return true;
    char why[512];
    snprintf(why, sizeof why, "%s", nb_last_error());
    nb__set_error(nb_last_error_kind(), "fit: cannot resume from %s: %s", path, why);
    return false;
}

bool nb__backup_read(const char *path, nb_model *m, nb_optimizer *opt, float *best, size_t best_floats,
                     nb_history *h, int room, nb_fit_point *p) {
    nb_tensor *point = array("fit/point", 2 * P_COUNT, NULL);
    if (!point) return nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory"), false;
    if (!load(path, 1, &point)) return nb_tensor_free(point), false;
    const float *q = point->data;
    const nb_fit_point want = *p;
    const int epochs = (int)get(q, P_EPOCHS), n_hist = (int)get(q, P_HIST);
    bool ok = true;
    if (get(q, P_VERSION) != BACKUP_VERSION) {
        ok = false;
        nb__set_error(NB_ERR_UNSUPPORTED, "fit: %s is a backup of version %g; this nabla reads %d", path, get(q, P_VERSION),
                           BACKUP_VERSION);
    } else if (get_u64(q, P_SEED) != want.seed || (int)get(q, P_BATCH) != want.batch || (int)get(q, P_N) != want.n) {
        ok = false;
        nb__set_last_error("fit: %s was made with seed %llu, batch %d and %d training examples; this fit has seed "
                           "%llu, batch %d and %d: it would not continue the same run",
                           path, (unsigned long long)get_u64(q, P_SEED), (int)get(q, P_BATCH), (int)get(q, P_N),
                           (unsigned long long)want.seed, want.batch, want.n);
    } else if (epochs < 0 || n_hist != epochs || n_hist > room) {
        ok = false;
        nb__set_last_error("fit: %s has %d epochs done; this fit runs %d", path, epochs, room);
    }
    if (ok) {
        p->epochs_done = epochs, p->step_count = (long)get(q, P_STEPS), p->graph_step = get_u64(q, P_GSTEP);
        p->opt_steps = (long)get(q, P_OSTEPS), p->nadam_product = get(q, P_NADAM);
        p->lr = (float)get(q, P_LR), p->momentum = (float)get(q, P_MOM), p->best = get(q, P_BEST);
        p->wait = (int)get(q, P_WAIT), p->sched_lr = (float)get(q, P_SLR), p->sched_best = get(q, P_SBEST);
        p->sched_wait = (int)get(q, P_SWAIT);
        h->best_epoch = (int)get(q, P_BEST_EPOCH), h->train_seconds = get(q, P_SECONDS);
    }
    nb_tensor_free(point);
    if (!ok) return false;

    /* the weights, the optimizer's arrays, the history and the best weights */
    nb_tensor *const *mt;
    const int nm = nb_model_tensors(m, &mt), no = nb_optimizer_state_count(opt);
    nb_tensor **all = calloc((size_t)(nm + no + 2), sizeof *all);
    if (!all) return nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory"), false;
    int n = 0;
    for (int i = 0; i < nm; i++) all[n++] = mt[i];
    const int own = n;
    ok = optimizer_arrays(opt, all + n, false) == no;
    if (ok) n += no;
    nb_tensor *hist = ok ? array("fit/history", (size_t)2 * E_COUNT * n_hist, NULL) : NULL;
    ok = ok && (all[n++] = hist) != NULL;
    nb_tensor *bw = ok && best ? array("fit/best", best_floats, NULL) : NULL;
    if (ok && best) ok = (all[n++] = bw) != NULL;
    if (!ok) nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory");
    ok = ok && load(path, n, all);
    for (int i = 0; ok && i < no; i++) {
        nb_optimizer_state_entry e;
        nb_optimizer_state(opt, i, &e);
        memcpy(e.data, all[own + i]->data, e.size * sizeof(float));
    }
    ok = ok && nb_optimizer_set_steps(opt, p->opt_steps, p->nadam_product);
    if (ok) {
        nb_optimizer_set_lr(opt, p->lr);
        if (nb_optimizer_has_momentum(opt)) nb_optimizer_set_momentum(opt, p->momentum);
        for (int e = 0; e < n_hist; e++) {
            const float *r = hist->data + 2 * E_COUNT * e;
            h->epochs[e] = (nb_epoch_metrics){
                .epoch = (int)get(r, E_EPOCH), .loss = get(r, E_LOSS), .accuracy = get(r, E_ACC),
                .val_loss = get(r, E_VLOSS), .val_accuracy = get(r, E_VACC), .has_validation = get(r, E_HASV) != 0,
                .lr = get(r, E_LR), .seconds = get(r, E_SECONDS), .step_seconds = get(r, E_STEPSEC),
                .n_outputs = (int)get(r, E_NOUT)};
            for (int k = 0; k < NB_MODEL_MAX_IO; k++) {
                h->epochs[e].output_loss[k] = get(r, E_OUTS + k);
                h->epochs[e].output_metric[k] = get(r, E_OUTS + NB_MODEL_MAX_IO + k);
                h->epochs[e].val_output_loss[k] = get(r, E_OUTS + 2 * NB_MODEL_MAX_IO + k);
                h->epochs[e].val_output_metric[k] = get(r, E_OUTS + 3 * NB_MODEL_MAX_IO + k);
            }
        }
        h->n_epochs = n_hist;
        if (best) memcpy(best, bw->data, best_floats * sizeof(float));
    }
    for (int i = own; i < n; i++) nb_tensor_free(all[i]);
    free(all);
    return ok;
}
