/* data/dataset.c — what is done to a loaded dataset: slices, scaling,
 * standardization and shuffling. */
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
        nb__set_last_error("data: slice: out is NULL");
        return NB_ERROR;
    }
    if (!src || !src->x || !src->y || src->n < 1 || src->dim < 1) {
        nb__set_last_error("data: slice: source dataset is %s", src ? "empty" : "NULL");
        goto fail;
    }
    // In 64 bits so that start + count cannot wrap.
    if (start < 0 || count < 1 || (long long)start + count > src->n) {
        nb__set_last_error("data: slice: examples [%d, %lld) are not a non-empty range inside "
                           "[0, %d)", start, (long long)start + count, src->n);
        goto fail;
    }
    size_t dim = (size_t)src->dim;
    float *x = nb__aligned_alloc((size_t)count * dim * sizeof *x);
    float *y = nb__aligned_alloc((size_t)count * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        nb__set_last_error("data: slice: out of memory for %d examples of %zu floats", count, dim);
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
        nb__set_last_error("data: standardizer: s is NULL");
        return NB_ERROR;
    }
    memset(s, 0, sizeof *s);
    if (!train || !train->x || train->n < 1 || train->dim < 1) {
        nb__set_last_error("data: standardizer: training set is %s", train ? "empty" : "NULL");
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
        nb__set_last_error("data: standardizer: out of memory for %zu features", dim);
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
        nb__set_last_error("data: standardizer: %s", s ? "not fitted" : "s is NULL");
        return NB_ERROR;
    }
    if (!d) {
        nb__set_last_error("data: standardizer: dataset is NULL");
        return NB_ERROR;
    }
    if (d->dim != s->dim) {
        nb__set_last_error("data: standardizer: dataset has %d features, fitted on %d", d->dim,
                           s->dim);
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
