/* train/grad_sync.c — the gradients' sums over processes, in buckets
 * (train/grad_sync.h).
 *
 * Backward completes the last layer's gradients first. Tensors are laid
 * out in that order in one buffer and cut into buckets of about
 * bucket_bytes; as the grad-ready hook names a tensor, its weighted
 * gradient is copied into its place, and a bucket whose tensors are all in
 * is started. Buckets start in their order only (a full bucket waits for
 * the ones before it), so every process starts the same sums in the same
 * order whatever its timing: the condition for collective calls. */
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "train/grad_sync.h"

enum { DEFAULT_BUCKET_BYTES = 256 * 1024 };

typedef struct bucket {
    size_t start, floats; /* its part of buf */
    int left;             /* tensors not yet in, this step */
} bucket;

struct nb__grad_sync {
    const nb_fit_dist *d;
    nb_graph *g;
    nb_node *loss;
    bool overlap;       /* the dist starts sums and waits for them */
    int n, n_buckets;
    nb_tensor **t;      /* in the order backward completes them */
    nb_tensor **scratch; /* the graph's order again, to compare */
    size_t *offset;     /* t[i]'s place in buf */
    int *bucket_of;
    bool *in;           /* t[i] copied into buf this step */
    bucket *b;
    float *buf;
    float weight;
    int cursor;         /* the tensor the hook should name next */
    int next;           /* the first bucket not started */
    bool failed;
};

static void copy_in(nb__grad_sync *s, int i) {
    const nb_tensor *t = s->t[i];
    float *dst = s->buf + s->offset[i];
    if (s->weight == 0 || !t->grad) memset(dst, 0, t->size * sizeof(float));
    else if (s->weight == 1) memcpy(dst, t->grad, t->size * sizeof(float));
    else
        for (size_t k = 0; k < t->size; k++) dst[k] = s->weight * t->grad[k];
    s->in[i] = true;
    s->b[s->bucket_of[i]].left--;
}

/* Starts the full buckets from s->next on, in order. */
static void start_ready(nb__grad_sync *s) {
    while (s->next < s->n_buckets && s->b[s->next].left == 0) {
        const bucket *b = &s->b[s->next++];
        if (!s->failed && s->d->start_sum_floats(s->d->user, s->buf + b->start, b->floats) != NB_OK)
            s->failed = true;
    }
}

static void on_ready(void *user, nb_tensor *t) {
    nb__grad_sync *s = user;
    if (!t) {
        if (s->next > 0 && s->d->progress) s->d->progress(s->d->user);
        return;
    }
    int i = s->cursor < s->n && s->t[s->cursor] == t ? s->cursor : -1;
    for (int k = 0; i < 0 && k < s->n; k++)
        if (s->t[k] == t) i = k;
    if (i < 0 || s->in[i]) return;
    s->cursor = i + 1;
    copy_in(s, i);
    if (s->overlap) start_ready(s);
}

static void free_plan(nb__grad_sync *s) {
    free(s->t), free(s->offset), free(s->bucket_of), free(s->in), free(s->b), free(s->buf), free(s->scratch);
    s->t = NULL, s->offset = NULL, s->bucket_of = NULL, s->in = NULL, s->b = NULL, s->buf = NULL;
    s->scratch = NULL, s->n = s->n_buckets = 0;
}

/* Lays out the n tensors of the graph's order in buckets. */
static bool plan(nb__grad_sync *s, int n) {
    free_plan(s);
    const size_t cap = (s->d->bucket_bytes ? s->d->bucket_bytes : DEFAULT_BUCKET_BYTES) / sizeof(float);
    const size_t m = n ? (size_t)n : 1;
    s->t = calloc(m, sizeof *s->t), s->scratch = calloc(m, sizeof *s->scratch);
    s->offset = calloc(m, sizeof *s->offset), s->bucket_of = calloc(m, sizeof *s->bucket_of);
    s->in = calloc(m, sizeof *s->in), s->b = calloc(m, sizeof *s->b);
    if (!s->t || !s->scratch || !s->offset || !s->bucket_of || !s->in || !s->b) return false;
    s->n = nb_graph_grad_order(s->g, s->loss, s->t, n);
    size_t total = 0;
    for (int i = 0; i < s->n; i++) {
        bucket *cur = s->n_buckets ? &s->b[s->n_buckets - 1] : NULL;
        if (!cur || (cur->floats > 0 && cur->floats + s->t[i]->size > cap)) {
            cur = &s->b[s->n_buckets++];
            cur->start = total;
        }
        s->offset[i] = total, s->bucket_of[i] = s->n_buckets - 1;
        cur->floats += s->t[i]->size;
        total += s->t[i]->size;
    }
    if (!(s->buf = malloc(sizeof(float) * (total ? total : 1)))) return false;
    nb__grad_sync_begin(s, 1);
    return true;
}

nb__grad_sync *nb__grad_sync_new(const nb_fit_dist *d, nb_graph *g, nb_node *loss) {
    nb__grad_sync *s = calloc(1, sizeof *s);
    if (!s) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory");
        return NULL;
    }
    s->d = d, s->g = g, s->loss = loss;
    s->overlap = d->start_sum_floats && d->wait_sums;
    if (!nb__grad_sync_refresh(s)) {
        nb__grad_sync_free(s);
        return NULL;
    }
    nb_graph_on_grad_ready(g, on_ready, s);
    return s;
}

bool nb__grad_sync_refresh(nb__grad_sync *s) {
    const int n = nb_graph_grad_order(s->g, s->loss, NULL, 0);
    if (n < 0) {
        nb__set_error_from_graph(s->g, "fit: %s", nb_graph_error(s->g));
        return false;
    }
    if (s->t && n == s->n) { /* the same tensors (none frozen or unfrozen since)? */
        nb_graph_grad_order(s->g, s->loss, s->scratch, n);
        if (!memcmp(s->scratch, s->t, (size_t)n * sizeof *s->t)) return true;
    }
    if (plan(s, n)) return true;
    free_plan(s);
    nb__set_error(NB_ERR_OUT_OF_MEMORY, "fit: out of memory for the gradients' buckets");
    return false;
}

uint64_t nb__grad_sync_plan_hash(const nb__grad_sync *s) {
    uint64_t h = 1469598103934665603u; /* FNV-1a over the lengths */
    for (int k = -1; k < s->n_buckets; k++) {
        uint64_t v = k < 0 ? (uint64_t)s->n_buckets : (uint64_t)s->b[k].floats;
        for (int byte = 0; byte < 8; byte++) h = (h ^ ((v >> (8 * byte)) & 0xff)) * 1099511628211u;
    }
    return h;
}

void nb__grad_sync_begin(nb__grad_sync *s, float weight) {
    s->weight = weight, s->cursor = 0, s->next = 0, s->failed = false;
    memset(s->in, 0, (size_t)s->n * sizeof *s->in);
    for (int k = 0; k < s->n_buckets; k++) s->b[k].left = 0;
    for (int i = 0; i < s->n; i++) s->b[s->bucket_of[i]].left++;
}

bool nb__grad_sync_end(nb__grad_sync *s) {
    for (int i = 0; i < s->n; i++) /* those backward did not name (it failed, or did not run) */
        if (!s->in[i]) copy_in(s, i);
    if (s->overlap) {
        start_ready(s);
        if (s->d->wait_sums(s->d->user) != NB_OK) s->failed = true;
    } else {
        for (int k = 0; k < s->n_buckets && !s->failed; k++)
            if (s->d->sum_floats(s->d->user, s->buf + s->b[k].start, s->b[k].floats) != NB_OK) s->failed = true;
    }
    if (s->failed) {
        if (!nb_last_error()[0]) nb__set_last_error("fit: summing the gradients over the processes failed");
        return false;
    }
    for (int i = 0; i < s->n; i++)
        if (s->t[i]->grad) memcpy(s->t[i]->grad, s->buf + s->offset[i], s->t[i]->size * sizeof(float));
    return true;
}

void nb__grad_sync_free(nb__grad_sync *s) {
    if (!s) return;
    if (s->g) nb_graph_on_grad_ready(s->g, NULL, NULL);
    free_plan(s);
    free(s);
}
