/* data/dataset.c — what is done to a loaded dataset: slices, selection by
 * class, samples, splits, concatenation, scaling, standardization,
 * shuffling and batches. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/data.h"

void nb_dataset_free(nb_dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

nb_status nb_dataset_slice(const nb_dataset *src, int start, int count, nb_dataset *out) {
    if (!out) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: slice: out is NULL");
        return NB_ERROR;
    }
    if (!src || !src->x || !src->y || src->n < 1 || src->dim < 1) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: slice: source dataset is %s",
                      src ? "empty" : "NULL");
        goto fail;
    }
    // In 64 bits so that start + count cannot wrap.
    if (start < 0 || count < 1 || (long long)start + count > src->n) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT,
                      "data: slice: examples [%d, %lld) are not a non-empty range inside "
                      "[0, %d)", start, (long long)start + count, src->n);
        goto fail;
    }
    size_t dim = (size_t)src->dim;
    float *x = nb__aligned_alloc((size_t)count * dim * sizeof *x);
    float *y = nb__aligned_alloc((size_t)count * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        nb__set_error(NB_ERR_OUT_OF_MEMORY,
                      "data: slice: out of memory for %d examples of %zu floats", count, dim);
        goto fail;
    }
    memcpy(x, src->x + (size_t)start * dim, (size_t)count * dim * sizeof *x);
    memcpy(y, src->y + start, (size_t)count * sizeof *y);
    nb_dataset r = *src;  // dims and class count carry over
    r.x = x;
    r.y = y;
    r.n = count;
    if (out == src) nb_dataset_free(out);  // slicing in place replaces the source
    *out = r;
    return NB_OK;
fail:
    // When out is src, the source stays as it was rather than being lost.
    if (out != src) memset(out, 0, sizeof *out);
    return NB_ERROR;
}

void nb_dataset_scale(nb_dataset *d, float factor) {
    if (!d || !d->x || d->n < 1 || d->dim < 1) return;
    size_t total = (size_t)d->n * (size_t)d->dim;
    for (size_t i = 0; i < total; i++) d->x[i] *= factor;
}

nb_status nb_standardizer_fit(nb_standardizer *s, const nb_dataset *train) {
    if (!s) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: standardizer: s is NULL");
        return NB_ERROR;
    }
    memset(s, 0, sizeof *s);
    if (!train || !train->x || train->n < 1 || train->dim < 1) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: standardizer: training set is %s",
                      train ? "empty" : "NULL");
        return NB_ERROR;
    }
    size_t n = (size_t)train->n, dim = (size_t)train->dim;
    float *mean = malloc(dim * sizeof *mean), *std = malloc(dim * sizeof *std);
    double *acc = calloc(dim, sizeof *acc), *mu = malloc(dim * sizeof *mu);
    if (!mean || !std || !acc || !mu) {
        free(mean);
        free(std);
        free(acc);
        free(mu);
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: standardizer: out of memory for %zu features",
                      dim);
        return NB_ERROR;
    }
    // Two passes in double: the one-pass E[x²] - E[x]² cancels when a
    // feature's mean is large next to its spread, and 60,000 float sums
    // would lose digits too.
    for (size_t i = 0; i < n; i++) {
        const float *r = train->x + i * dim;
        for (size_t j = 0; j < dim; j++) acc[j] += r[j];
    }
    for (size_t j = 0; j < dim; j++) {
        mu[j] = acc[j] / (double)n;
        acc[j] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const float *r = train->x + i * dim;
        for (size_t j = 0; j < dim; j++) {
            double d = r[j] - mu[j];
            acc[j] += d * d;
        }
    }
    for (size_t j = 0; j < dim; j++) {
        // Population std (divide by n), as Keras' Normalization layer and
        // scikit-learn's StandardScaler use.
        float sd = (float)sqrt(acc[j] / (double)n);
        mean[j] = (float)mu[j];
        std[j] = sd == 0.0f ? 1.0f : sd;  // a constant feature is centred, not blown up
    }
    free(acc);
    free(mu);
    s->mean = mean;
    s->std = std;
    s->dim = (int)dim;
    return NB_OK;
}

nb_status nb_standardizer_apply(const nb_standardizer *s, nb_dataset *d) {
    if (!s || !s->mean || !s->std || s->dim < 1) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: standardizer: %s",
                      s ? "not fitted" : "s is NULL");
        return NB_ERROR;
    }
    if (!d) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: standardizer: dataset is NULL");
        return NB_ERROR;
    }
    if (d->dim != s->dim) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT,
                      "data: standardizer: dataset has %d features, fitted on %d", d->dim, s->dim);
        return NB_ERROR;
    }
    if (!d->x || d->n < 1) return NB_OK;
    size_t n = (size_t)d->n, dim = (size_t)d->dim;
    for (size_t i = 0; i < n; i++) {
        float *r = d->x + i * dim;
        for (size_t j = 0; j < dim; j++) r[j] = (r[j] - s->mean[j]) / s->std[j];
    }
    return NB_OK;
}

void nb_standardizer_free(nb_standardizer *s) {
    if (!s) return;
    free(s->mean);
    free(s->std);
    memset(s, 0, sizeof *s);
}

void nb_shuffle(int *perm, int n, uint64_t seed, uint64_t stream) {
    if (!perm || n < 1) return;
    for (int i = 0; i < n; i++) perm[i] = i;
    nb_rng r;
    nb_rng_seed(&r, seed, stream);
    // Durstenfeld's Fisher-Yates: every permutation equally likely, given
    // nb_rng_below's unbiased draws.
    for (int i = n - 1; i > 0; i--) {
        int j = (int)nb_rng_below(&r, (uint32_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* ---- selection, sampling, splitting, concatenation ---- */

/* Labels at or above 2^24 are no longer exact in a float. */
#define DATA_MAX_LABEL (1 << 24)

/* Streams of nb_shuffle for the operations below, apart from the epoch
 * numbers (1, 2, ...) that shuffle batches, so a sample and an epoch of the
 * same seed are not the same order. */
#define STREAM_SAMPLE 0x73616d706c65ull /* "sample" */
#define STREAM_SPLIT 0x73706c6974ull    /* "split" */

static bool usable(const nb_dataset *d) { return d && d->x && d->y && d->n > 0 && d->dim > 0; }

/* Allocates a dataset of n examples shaped like like (dims, n_classes);
 * false (error set, naming fn) when memory runs out. */
static bool alloc_like(const nb_dataset *like, int n, nb_dataset *r, const char *fn) {
    size_t dim = (size_t)like->dim;
    *r = *like;
    r->n = n;
    r->x = nb__aligned_alloc((size_t)n * dim * sizeof *r->x);
    r->y = nb__aligned_alloc((size_t)n * sizeof *r->y);
    if (!r->x || !r->y) {
        free(r->x);
        free(r->y);
        memset(r, 0, sizeof *r);
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: %s: out of memory for %d examples of %zu floats",
                      fn, n, dim);
        return false;
    }
    return true;
}

/* r's example k = src's example idx[k], k < count. */
static void gather(const nb_dataset *src, const int *idx, int count, nb_dataset *r) {
    size_t dim = (size_t)src->dim;
    for (int k = 0; k < count; k++) {
        memcpy(r->x + (size_t)k * dim, src->x + (size_t)idx[k] * dim, dim * sizeof *r->x);
        r->y[k] = src->y[idx[k]];
    }
}

/* Moves r into *out. An output that is one of the inputs loses its old
 * arrays; any other is overwritten as it is (it may be uninitialized). */
static void replace(nb_dataset *out, const nb_dataset *r, const nb_dataset *in1,
                    const nb_dataset *in2) {
    if (out == in1 || out == in2) nb_dataset_free(out);
    *out = *r;
}

/* Zeroes out on error unless it is one of the inputs (kept as it was). */
static nb_status fail_out(nb_dataset *out, const nb_dataset *in1, const nb_dataset *in2) {
    if (out && out != in1 && out != in2) memset(out, 0, sizeof *out);
    return NB_ERROR;
}

nb_status nb_dataset_select(const nb_dataset *src, const int *classes, int n_kept,
                            const int *new_labels, nb_dataset *out) {
    if (!out) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_dataset_select: out is NULL");
        return NB_ERROR;
    }
    if (!usable(src)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_dataset_select: source dataset is %s",
                      src ? "empty" : "NULL");
        return fail_out(out, src, NULL);
    }
    if (src->n_classes < 1) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT,
                      "data: nb_dataset_select: the source's labels are not class indices "
                      "(n_classes is %d)", src->n_classes);
        return fail_out(out, src, NULL);
    }
    if (!classes || n_kept < 1 || n_kept > src->n_classes) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT,
                      "data: nb_dataset_select: %d classes asked for (classes %s); need 1 to "
                      "the source's %d", n_kept, classes ? "given" : "NULL", src->n_classes);
        return fail_out(out, src, NULL);
    }
    // new label of each source class, -1 where the class is dropped
    int *map = malloc((size_t)src->n_classes * sizeof *map);
    if (!map) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: nb_dataset_select: out of memory");
        return fail_out(out, src, NULL);
    }
    for (int c = 0; c < src->n_classes; c++) map[c] = -1;
    int max_new = -1;
    for (int k = 0; k < n_kept; k++) {
        int c = classes[k], l = new_labels ? new_labels[k] : k;
        if (c < 0 || c >= src->n_classes) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT,
                          "data: nb_dataset_select: class %d (entry %d) is outside the "
                          "source's [0, %d)", c, k, src->n_classes);
            goto fail;
        }
        if (map[c] >= 0) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT,
                          "data: nb_dataset_select: class %d is chosen twice (entry %d)", c, k);
            goto fail;
        }
        if (l < 0 || l >= DATA_MAX_LABEL) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT,
                          "data: nb_dataset_select: new label %d (entry %d) is outside [0, %d)",
                          l, k, DATA_MAX_LABEL);
            goto fail;
        }
        map[c] = l;
        if (l > max_new) max_new = l;
    }
    // Two passes: count, then copy, so the result is allocated once.
    int kept = 0;
    for (int i = 0; i < src->n; i++) {
        float v = src->y[i];
        if (!(v >= 0 && v < (float)src->n_classes && v == floorf(v))) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT,
                          "data: nb_dataset_select: label %g of example %d is not a class "
                          "index in [0, %d)", v, i, src->n_classes);
            goto fail;
        }
        kept += map[(int)v] >= 0;
    }
    if (kept == 0) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT,
                      "data: nb_dataset_select: none of the %d examples has one of the %d "
                      "chosen classes", src->n, n_kept);
        goto fail;
    }
    nb_dataset r;
    if (!alloc_like(src, kept, &r, "nb_dataset_select")) goto fail;
    size_t dim = (size_t)src->dim;
    for (int i = 0, k = 0; i < src->n; i++) {
        int l = map[(int)src->y[i]];
        if (l < 0) continue;
        memcpy(r.x + (size_t)k * dim, src->x + (size_t)i * dim, dim * sizeof *r.x);
        r.y[k++] = (float)l;
    }
    r.n_classes = max_new + 1;
    free(map);
    replace(out, &r, src, NULL);
    return NB_OK;
fail:
    free(map);
    return fail_out(out, src, NULL);
}

nb_status nb_dataset_sample(const nb_dataset *src, int count, uint64_t seed, nb_dataset *out) {
    if (!out) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_dataset_sample: out is NULL");
        return NB_ERROR;
    }
    if (!usable(src)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_dataset_sample: source dataset is %s",
                      src ? "empty" : "NULL");
        return fail_out(out, src, NULL);
    }
    if (count < 1 || count > src->n) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT,
                      "data: nb_dataset_sample: count %d is not in [1, %d] (the source's "
                      "examples)", count, src->n);
        return fail_out(out, src, NULL);
    }
    int *perm = malloc((size_t)src->n * sizeof *perm);
    unsigned char *chosen = calloc((size_t)src->n, 1);
    nb_dataset r;
    if (!perm || !chosen) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: nb_dataset_sample: out of memory for %d indices",
                      src->n);
        goto fail;
    }
    if (!alloc_like(src, count, &r, "nb_dataset_sample")) goto fail;
    // The first count of a shuffle are a uniform subset; taking them in the
    // source's order keeps sample(n) a plain copy and any order-based
    // meaning (time, file order) intact.
    nb_shuffle(perm, src->n, seed, STREAM_SAMPLE);
    for (int k = 0; k < count; k++) chosen[perm[k]] = 1;
    for (int i = 0, k = 0; i < src->n; i++)
        if (chosen[i]) perm[k++] = i;
    gather(src, perm, count, &r);
    free(perm);
    free(chosen);
    replace(out, &r, src, NULL);
    return NB_OK;
fail:
    free(perm);
    free(chosen);
    return fail_out(out, src, NULL);
}

nb_status nb_dataset_split(const nb_dataset *src, int count, bool shuffle, uint64_t seed,
                           nb_dataset *first, nb_dataset *second) {
    if (!first || !second || first == second) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_dataset_split: %s", !first || !second
                      ? "first or second is NULL" : "first and second are the same dataset");
        if (first && first != src) memset(first, 0, sizeof *first);
        if (second && second != src) memset(second, 0, sizeof *second);
        return NB_ERROR;
    }
    if (!usable(src) || src->n < 2 || count < 1 || count >= src->n) {
        if (!usable(src))
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_dataset_split: source dataset is %s",
                          src ? "empty" : "NULL");
        else
            nb__set_error(NB_ERR_INVALID_ARGUMENT,
                          "data: nb_dataset_split: count %d leaves a part empty: need 1 to "
                          "%d of the %d examples", count, src->n - 1, src->n);
        fail_out(first, src, NULL);
        fail_out(second, src, NULL);
        return NB_ERROR;
    }
    int n = src->n;
    int *perm = malloc((size_t)n * sizeof *perm);
    nb_dataset a = {0}, b = {0};
    if (!perm) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: nb_dataset_split: out of memory for %d indices",
                      n);
        goto fail;
    }
    if (shuffle) nb_shuffle(perm, n, seed, STREAM_SPLIT);
    else
        for (int i = 0; i < n; i++) perm[i] = i;
    if (!alloc_like(src, count, &a, "nb_dataset_split") ||
        !alloc_like(src, n - count, &b, "nb_dataset_split"))
        goto fail;
    gather(src, perm, count, &a);
    gather(src, perm + count, n - count, &b);
    free(perm);
    // src may be first or second: both results exist before either is moved.
    replace(first, &a, src, NULL);
    replace(second, &b, src, NULL);
    return NB_OK;
fail:
    free(perm);
    nb_dataset_free(&a);
    nb_dataset_free(&b);
    fail_out(first, src, NULL);
    fail_out(second, src, NULL);
    return NB_ERROR;
}

nb_status nb_dataset_concat(const nb_dataset *a, const nb_dataset *b, nb_dataset *out) {
    if (!out) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_dataset_concat: out is NULL");
        return NB_ERROR;
    }
    if (!usable(a) || !usable(b)) {
        const nb_dataset *bad = usable(a) ? b : a;
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_dataset_concat: %s dataset is %s",
                      bad == a ? "first" : "second", bad ? "empty" : "NULL");
        return fail_out(out, a, b);
    }
    if (a->dim != b->dim || a->rows != b->rows || a->cols != b->cols) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT,
                      "data: nb_dataset_concat: examples differ in shape: %d x %d (%d "
                      "features) and %d x %d (%d features)", a->rows, a->cols, a->dim, b->rows,
                      b->cols, b->dim);
        return fail_out(out, a, b);
    }
    if ((long long)a->n + b->n > INT32_MAX) {
        nb__set_error(NB_ERR_UNSUPPORTED,
                      "data: nb_dataset_concat: %d + %d examples is more than %d", a->n, b->n,
                      INT32_MAX);
        return fail_out(out, a, b);
    }
    nb_dataset r;
    if (!alloc_like(a, a->n + b->n, &r, "nb_dataset_concat")) return fail_out(out, a, b);
    size_t dim = (size_t)a->dim;
    memcpy(r.x, a->x, (size_t)a->n * dim * sizeof *r.x);
    memcpy(r.x + (size_t)a->n * dim, b->x, (size_t)b->n * dim * sizeof *r.x);
    memcpy(r.y, a->y, (size_t)a->n * sizeof *r.y);
    memcpy(r.y + a->n, b->y, (size_t)b->n * sizeof *r.y);
    // Class indices on both sides: the larger count covers both. Otherwise
    // (targets, or unknown) the labels are not class indices as a whole.
    r.n_classes = a->n_classes > 0 && b->n_classes > 0
                      ? (a->n_classes > b->n_classes ? a->n_classes : b->n_classes)
                      : 0;
    replace(out, &r, a, b);  // out may be a or b: r no longer needs them
    return NB_OK;
}

/* ---- batches for custom loops ---- */

struct nb_batches {
    const nb_dataset *d;  // borrowed
    int batch, next, epoch, n, dim;
    bool shuffle;
    uint64_t seed;
    int *perm;            // order of the current epoch (identity without shuffle)
    float *x, *y;         // gathered batch, [batch, dim] and [batch]
};

nb_batches *nb_batches_new(const nb_dataset *d, int batch_size, bool shuffle, uint64_t seed) {
    if (!usable(d)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_batches_new: dataset is %s",
                      d ? "empty" : "NULL");
        return NULL;
    }
    if (batch_size < 1) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_batches_new: batch size %d is below 1",
                      batch_size);
        return NULL;
    }
    int batch = batch_size < d->n ? batch_size : d->n;
    nb_batches *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    b->d = d;
    b->batch = batch;
    b->n = d->n;
    b->dim = d->dim;
    b->shuffle = shuffle;
    b->seed = seed;
    b->next = d->n;  // the first call starts epoch 1
    b->perm = malloc((size_t)d->n * sizeof *b->perm);
    b->x = nb__aligned_alloc((size_t)batch * (size_t)d->dim * sizeof *b->x);
    b->y = nb__aligned_alloc((size_t)batch * sizeof *b->y);
    if (!b->perm || !b->x || !b->y) goto oom;
    return b;
oom:
    nb_batches_free(b);
    nb__set_error(NB_ERR_OUT_OF_MEMORY,
                  "data: nb_batches_new: out of memory for batches of %d x %d floats", batch,
                  d->dim);
    return NULL;
}

int nb_batches_next(nb_batches *b, const float **x, const float **y) {
    if (!b || !x || !y) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_batches_next: %s is NULL",
                      !b ? "the iterator" : !x ? "x" : "y");
        return -1;
    }
    if (b->next >= b->n) {
        if (b->epoch > 0 && b->next == b->n) {
            b->next = b->n + 1;  // report the end once, then start the next epoch
            *x = *y = NULL;
            return 0;
        }
        b->epoch++;
        b->next = 0;
        if (b->shuffle) nb_shuffle(b->perm, b->n, b->seed, (uint64_t)b->epoch);
        else
            for (int i = 0; i < b->n; i++) b->perm[i] = i;
    }
    int start = b->next, count = b->n - start < b->batch ? b->n - start : b->batch;
    b->next += count;
    if (!b->shuffle) {  // a run of consecutive examples: no copy needed
        *x = b->d->x + (size_t)start * (size_t)b->dim;
        *y = b->d->y + start;
        return count;
    }
    nb_dataset into = {.x = b->x, .y = b->y, .dim = b->dim};
    gather(b->d, b->perm + start, count, &into);
    *x = b->x;
    *y = b->y;
    return count;
}

int nb_batches_epoch(const nb_batches *b) { return b ? b->epoch : 0; }

int nb_batches_per_epoch(const nb_batches *b) { return b ? (b->n + b->batch - 1) / b->batch : 0; }

void nb_batches_free(nb_batches *b) {
    if (!b) return;
    free(b->perm);
    free(b->x);
    free(b->y);
    free(b);
}
