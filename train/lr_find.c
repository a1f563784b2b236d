/* train/lr_find.c — the learning-rate range test (nabla/train.h): a clone
 * of the model trained through an nb_trainer with its rate set before each
 * step, the loss smoothed as fast.ai does, and the suggestion read off the
 * smoothed curve. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/file.h"
#include "graph/internal.h"
#include "nabla/train.h"
#include "train/plot.h"

nb_lr_find_opts nb_lr_find_defaults(void) {
    return (nb_lr_find_opts){.lr_min = 1e-5, .lr_max = 10, .steps = 0, .smoothing = 0.98, .diverge = 4};
}

void nb_lr_find_result_free(nb_lr_find_result *r) {
    if (!r) return;
    free(r->lr), free(r->loss), free(r->smoothed);
    memset(r, 0, sizeof *r);
}

/* fmt takes the two numbers (a second %g may be left out) */
static nb_status refuse(const char *fmt, double a, double b) {
    nb__set_error(NB_ERR_INVALID_ARGUMENT, fmt, a, b);
    return NB_ERROR;
}

static nb_status check_opts(const nb_lr_find_opts *o) {
    if (!isfinite(o->lr_min) || !isfinite(o->lr_max) || o->lr_min <= 0)
        return refuse("lr find: lr_min %g and lr_max %g must be finite, lr_min > 0", o->lr_min, o->lr_max);
    if (o->lr_min >= o->lr_max) return refuse("lr find: lr_min %g must be below lr_max %g", o->lr_min, o->lr_max);
    if (!(o->smoothing >= 0 && o->smoothing < 1))
        return refuse("lr find: smoothing %g must be in [0, 1)", o->smoothing, 0);
    if (!(o->diverge > 1) || !isfinite(o->diverge))
        return refuse("lr find: diverge %g must be a finite number > 1", o->diverge, 0);
    return NB_OK;
}

/* The rate of the steepest fall of the smoothed loss against log(lr), over
 * the steps before the minimum: central differences across 1/25 of the
 * planned steps (k on each side), wide enough that the step-to-step noise
 * of the batch losses does not pick the slope; the minimum's rate when
 * there are too few steps before it. */
static double steepest(const nb_lr_find_result *r) {
    const long k = r->steps / 50 > 1 ? r->steps / 50 : 1;
    double best = 0, at = r->min_lr;
    for (long i = k; i + k <= r->best; i++) {
        double d = (r->smoothed[i + k] - r->smoothed[i - k]) / log(r->lr[i + k] / r->lr[i - k]);
        if (d < best) best = d, at = r->lr[i];
    }
    return at;
}

nb_status nb_lr_find(nb_model *m, const nb_dataset *train, const nb_lr_find_opts *opts, nb_lr_find_result *r) {
    if (r) memset(r, 0, sizeof *r);
    if (!m || !train || !r) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "lr find: %s is NULL", !m ? "model" : !train ? "train" : "result");
        return NB_ERROR;
    }
    const nb_lr_find_opts o = opts ? *opts : nb_lr_find_defaults();
    if (check_opts(&o) != NB_OK) return NB_ERROR;
    nb_fit_opts fo = o.fit ? *o.fit : nb_fit_defaults();
    fo.use_schedule = false;
    fo.allow_nonfinite = true; /* a clone: its weights may go bad, and a non-finite loss ends the run here */
    fo.dist = NULL;
    if (fo.batch_size == 0) fo.batch_size = 32;
    const bool self = fo.n_losses == 0 && fo.loss.target_is_input;
    if (!train->x || train->n < 1 || (!self && !train->y)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "lr find: the training set is empty%s", train->x ? " or has no labels" : "");
        return NB_ERROR;
    }
    if (fo.batch_size < 1) return refuse("lr find: batch size %g must be >= 1", fo.batch_size, 0);
    const long per_epoch = (train->n + fo.batch_size - 1) / fo.batch_size;
    const long T = o.steps ? o.steps : per_epoch;
    if (T < 2)
        return refuse(o.steps ? "lr find: %g steps: at least 2 are needed"
                              : "lr find: one epoch is %g step: at least 2 are needed (set steps)",
                      (double)T, 0);

    nb_array arrays[2] = {{NULL, NULL, train->dim}, {NULL, NULL, 1}};
    nb_data batch = {fo.batch_size, 1, &arrays[0], self ? 0 : 1, &arrays[1]};
    nb_model *copy = nb_model_clone(m);
    nb_trainer *t = copy ? nb_trainer_new(copy, &batch, &fo) : NULL;
    nb_batches *it = t ? nb_batches_new(train, fo.batch_size, true, fo.seed) : NULL;
    r->lr = malloc((size_t)T * sizeof *r->lr);
    r->loss = malloc((size_t)T * sizeof *r->loss);
    r->smoothed = malloc((size_t)T * sizeof *r->smoothed);
    nb_status st = NB_OK;
    if (!it || !r->lr || !r->loss || !r->smoothed) {
        if (it) nb__set_error(NB_ERR_OUT_OF_MEMORY, "lr find: out of memory for %ld steps", T);
        st = NB_ERROR; /* else the clone's, the trainer's or the iterator's error stands */
    }
    r->steps = T;
    double avg = 0, corr = 1, best = INFINITY;
    const double ratio = o.lr_max / o.lr_min;
    for (long s = 0; st == NB_OK && s < T; s++) {
        const float *x, *y;
        int count = nb_batches_next(it, &x, &y);
        if (count == 0) count = nb_batches_next(it, &x, &y); /* the next epoch */
        const double lr = o.lr_min * pow(ratio, (double)s / (double)(T - 1));
        nb_optimizer_set_lr(nb_trainer_optimizer(t), (float)lr);
        arrays[0].data = x, arrays[1].data = y, batch.n = count;
        double loss;
        if (count < 1 || nb_train_step(t, &batch, &loss) != NB_OK) {
            st = NB_ERROR;
            break;
        }
        avg = o.smoothing * avg + (1 - o.smoothing) * loss;
        corr *= o.smoothing;
        const double sm = avg / (1 - corr);
        r->lr[s] = lr, r->loss[s] = loss, r->smoothed[s] = sm, r->n = s + 1;
        if (sm < best) best = sm, r->best = s;
        if (!isfinite(loss) || !isfinite(sm) || sm > o.diverge * best) {
            r->diverged = s + 1 < T;
            break;
        }
    }
    nb_batches_free(it);
    nb_trainer_free(t);
    nb_model_free(copy);
    if (st == NB_OK && !isfinite(best)) {
        nb__set_error(NB_ERR_NONFINITE, "lr find: the loss was not finite from the first step (at lr %g)", o.lr_min);
        st = NB_ERROR;
    }
    if (st != NB_OK) {
        nb_lr_find_result_free(r);
        return NB_ERROR;
    }
    r->min_lr = r->lr[r->best];
    r->steepest_lr = steepest(r);
    r->suggested_lr = r->min_lr / 10;
    return NB_OK;
}

nb_status nb_lr_find_write_csv(const nb_lr_find_result *r, const char *path) {
    if (!r || !path || r->n < 1) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "lr find csv: %s", !r || !path ? "result or path is NULL" : "the result is empty");
        return NB_ERROR;
    }
    nb_atomic_file out;
    char err[256];
    if (!nb__atomic_open(&out, path, err, sizeof err)) {
        nb__set_error(nb__errno_kind(errno), "lr find csv: %s: %s", path, err);
        return NB_ERROR;
    }
    fprintf(out.f, "step,lr,loss,smoothed\n");
    for (long i = 0; i < r->n; i++) fprintf(out.f, "%ld,%.9g,%.9g,%.9g\n", i, r->lr[i], r->loss[i], r->smoothed[i]);
    if (!nb__atomic_commit(&out, true, err, sizeof err)) {
        nb__set_error(nb__errno_kind(errno), "lr find csv: %s: %s", path, err);
        return NB_ERROR;
    }
    return NB_OK;
}

nb_status nb_lr_find_plot(const nb_lr_find_result *r, const char *path) {
    if (!r || !path || r->n < 1) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "lr find plot: %s", !r || !path ? "result or path is NULL" : "the result is empty");
        return NB_ERROR;
    }
    const char *term = nb__plot_terminal(path);
    if (!term) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "lr find plot: %s: the name must end in .png or .svg", path);
        return NB_ERROR;
    }
    /* the y range from the smoothed curve, so a last exploding step does not flatten it */
    double lo = INFINITY, hi = -INFINITY;
    for (long i = 0; i < r->n; i++)
        if (isfinite(r->smoothed[i])) lo = fmin(lo, r->smoothed[i]), hi = fmax(hi, r->smoothed[i]);
    hi = fmin(hi, lo + 2 * (r->smoothed[0] - lo) + 1e-3 * fabs(lo));
    char *buf = NULL;
    size_t len;
    FILE *gp = open_memstream(&buf, &len);
    if (!gp) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "lr find plot: out of memory");
        return NB_ERROR;
    }
    fprintf(gp, "set terminal %s\nset output\nset multiplot layout 1,1\nset grid\nset logscale x\n", term);
    fprintf(gp, "set xlabel 'learning rate'\nset ylabel 'loss'\nset title 'learning-rate range test: suggested %.3g'\n",
            r->suggested_lr);
    fprintf(gp, "set format x '%%.0e'\nset xrange [%.9g:%.9g]\n", r->lr[0], r->n > 1 ? r->lr[r->n - 1] : 2 * r->lr[0]);
    if (hi > lo) fprintf(gp, "set yrange [%.9g:%.9g]\n", lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo));
    fprintf(gp, "set arrow from %.9g, graph 0 to %.9g, graph 1 nohead dashtype 2\n", r->suggested_lr, r->suggested_lr);
    fprintf(gp, "set key top left\nplot '-' with lines lc rgb '#b0b0b0' title 'loss', '-' with lines lw 2 "
                "title 'smoothed', '-' with points pt 7 title 'minimum'\n");
    for (int curve = 0; curve < 2; curve++) {
        for (long i = 0; i < r->n; i++) {
            double v = curve ? r->smoothed[i] : r->loss[i];
            if (isfinite(v)) fprintf(gp, "%.9g %.9g\n", r->lr[i], v);
            else fprintf(gp, "%.9g NaN\n", r->lr[i]);
        }
        fprintf(gp, "e\n");
    }
    fprintf(gp, "%.9g %.9g\ne\nunset multiplot\n", r->min_lr, r->smoothed[r->best]);
    if (fclose(gp) != 0) {
        free(buf);
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "lr find plot: out of memory");
        return NB_ERROR;
    }
    return nb__plot_draw("lr find plot", path, buf, len);
}
