/* optim/clip.c — gradient clipping by value, per-tensor norm and global norm,
 * as Keras's clipvalue, clipnorm and global_clipnorm. */
#include <math.h>

#include "graph/internal.h"
#include "nabla/optim.h"

/* A sum of squares is split into at most CHUNKS pieces of at least
 * MIN_CHUNK elements, summed in double each and then in order: the result
 * depends on the tensor's size only, never on the thread count. */
#define CHUNKS 64
#define MIN_CHUNK 8192

static bool clipped(const nb_tensor *t) { return t && t->trainable && t->grad; }

static bool bad_bound(const char *what, float v) {
    if (v >= 0.0f) return false; /* +inf is fine: it clips nothing */
    nb__set_error(NB_ERR_INVALID_ARGUMENT, "clip: %s %g must be >= 0; nothing clipped", what, (double)v);
    return true;
}

static double sum_sq(const float *g, size_t n) {
    size_t chunk = (n + CHUNKS - 1) / CHUNKS;
    if (chunk < MIN_CHUNK) chunk = MIN_CHUNK;
    const size_t pieces = (n + chunk - 1) / chunk;
    double part[CHUNKS];
    NB_PARALLEL_FOR_IF(n >= NB_PAR_MIN, c, pieces, {
        const size_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
        part[c] = s;
    });
    double s = 0.0;
    for (size_t c = 0; c < pieces; c++) s += part[c];
    return s;
}

static void scale(float *g, size_t n, float s) { NB_PARALLEL_FOR(i, n, g[i] *= s); }

void nb_clip_by_value(int n, nb_tensor *const *params, float v) {
    if (n <= 0 || !params || bad_bound("value", v)) return;
    for (int p = 0; p < n; p++) {
        if (!clipped(params[p])) continue;
        float *g = params[p]->grad;
        const float lo = -v;
        /* comparisons rather than fminf/fmaxf, which would turn NaN into a bound */
        NB_PARALLEL_FOR(i, params[p]->size, g[i] = g[i] < lo ? lo : g[i] > v ? v : g[i]);
    }
}

void nb_clip_by_norm(int n, nb_tensor *const *params, float max) {
    if (n <= 0 || !params || bad_bound("norm", max)) return;
    for (int p = 0; p < n; p++) {
        if (!clipped(params[p])) continue;
        const double norm = sqrt(sum_sq(params[p]->grad, params[p]->size));
        if (norm > max) scale(params[p]->grad, params[p]->size, (float)(max / norm));
    }
}

double nb_clip_by_global_norm(int n, nb_tensor *const *params, float max) {
    if (n <= 0 || !params) return 0.0;
    double ss = 0.0;
    for (int p = 0; p < n; p++)
        if (clipped(params[p])) ss += sum_sq(params[p]->grad, params[p]->size);
    const double norm = sqrt(ss);
    if (bad_bound("global norm", max) || isinf(max)) return norm;
    float s;
    if (!isfinite(norm))
        s = NAN; /* Keras's signal that the gradients cannot be trusted */
    else if (norm > max)
        s = (float)(max / norm);
    else
        return norm;
    for (int p = 0; p < n; p++)
        if (clipped(params[p])) scale(params[p]->grad, params[p]->size, s);
    return norm;
}
