/* graph/tensor.c — tensors owned outside graphs, shapes, and the thread-local
 * error message of calls that have no graph. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

static _Thread_local char last_error[256];
static _Thread_local nb_error_kind last_error_kind;

static void set_error_v(nb_error_kind kind, const char *fmt, va_list ap) {
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    last_error_kind = kind;
}

void nb__set_error(nb_error_kind kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error_v(kind, fmt, ap);
    va_end(ap);
}

void nb__set_last_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error_v(NB_ERR_INVALID_ARGUMENT, fmt, ap);
    va_end(ap);
}

void nb__set_error_from_graph(const nb_graph *g, const char *fmt, ...) {
    nb_error_kind kind = nb_graph_error_kind(g);
    va_list ap;
    va_start(ap, fmt);
    // A fine graph has no kind to pass on; whoever calls this has failed,
    // and a graph that did not is not the reason.
    set_error_v(kind == NB_ERR_NONE ? NB_ERR_INVALID_ARGUMENT : kind, fmt, ap);
    va_end(ap);
}

nb_error_kind nb__errno_kind(int err) { return err == ENOMEM ? NB_ERR_OUT_OF_MEMORY : NB_ERR_IO; }

const char *nb_last_error(void) { return last_error; }

nb_error_kind nb_last_error_kind(void) { return last_error_kind; }

const char *nb_error_kind_name(nb_error_kind kind) {
    switch (kind) {
    case NB_ERR_NONE: return "none";
    case NB_ERR_INVALID_ARGUMENT: return "invalid_argument";
    case NB_ERR_OUT_OF_MEMORY: return "out_of_memory";
    case NB_ERR_IO: return "io";
    case NB_ERR_CORRUPT: return "corrupt";
    case NB_ERR_NONFINITE: return "nonfinite";
    case NB_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown";
}

void *nb__aligned_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

size_t nb_shape_size(const nb_shape *s) {
    size_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= (size_t)s->dim[i];
    return n;
}

char *nb_shape_str(const nb_shape *s, char *buf, size_t len) {
    size_t used = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < s->rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ",%d" : "%d", s->dim[i]);
    if (used < len) snprintf(buf + used, len - used, "]");
    return buf;
}

bool nb__dims_size(int rank, const int *dims, size_t *out) {
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 1 || n > NB_MAX_ELEMENTS / (size_t)dims[i]) return false;
        n *= (size_t)dims[i];
    }
    *out = n;
    return true;
}

nb_tensor *nb_tensor_new(int rank, const int *dims) {
    if (rank < 0 || rank > NB_MAX_RANK) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "tensor: rank %d outside [0,%d]", rank, NB_MAX_RANK);
        return NULL;
    }
    if (rank > 0 && !dims) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "tensor: dims is NULL for rank %d", rank);
        return NULL;
    }
    nb_shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 1) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "tensor: dimension %d is %d, must be >= 1", i,
                          dims[i]);
            return NULL;
        }
        s.dim[i] = dims[i];
    }
    size_t n;
    if (!nb__dims_size(rank, dims, &n)) {
        char buf[NB_SHAPE_STR_LEN];
        nb__set_error(NB_ERR_UNSUPPORTED, "tensor: %s has more than 2^40 elements",
                      nb_shape_str(&s, buf, sizeof buf));
        return NULL;
    }
    nb_tensor *t = calloc(1, sizeof *t);
    float *data = nb__aligned_alloc(n * sizeof(float));
    if (!t || !data) {
        free(t);
        free(data);
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "tensor: out of memory for %zu floats", n);
        return NULL;
    }
    memset(data, 0, n * sizeof(float));
    t->data = data;
    t->shape = s;
    t->size = n;
    t->trainable = true;
    return t;
}

void nb_tensor_free(nb_tensor *t) {
    if (!t) return;
    free(t->data);
    free(t->grad);
    free(t);
}

void nb_tensor_set_name(nb_tensor *t, const char *name) {
    if (!t) return;
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
}

int nb__tensor_ensure_grad(nb_tensor *t) {
    if (t->grad) return 0;
    t->grad = nb__aligned_alloc(t->size * sizeof(float));
    if (!t->grad) return -1;
    memset(t->grad, 0, t->size * sizeof(float));
    return 0;
}
