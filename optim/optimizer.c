/* optim/optimizer.c — SGD, momentum, Nesterov, AdaGrad, RMSProp and the Adam
 * family, with Keras 3's formulas and defaults (see nabla/optim.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/optim.h"

#define BLOCK NB_UPDATE_BLOCK /* elements per work item (graph/parallel.h) */

typedef struct slot {
    nb_tensor *t;
    float *s0, *s1; /* the kind's state (v, a, s, m; u or v), NULL if unused */
} slot;

struct nb_optimizer {
    nb_optimizer_config cfg;
    long steps;
    double nadam_prod; /* Nadam's P_t: the product of its mu over the steps so far */
    int n;
    float *state; /* one 64-byte aligned block holding every slot's s0 and s1 */
    size_t state_floats;
    nb_tensor **params; /* the tensors again, as the clipping functions take them */
    slot slots[];
};

/* What one kernel call needs, fixed for the step: every factor that does
 * not depend on the element is computed once, in double, then rounded. */
typedef struct kargs {
    nb_optimizer_kind kind;
    float lr, mom, rho, b1, b2, eps;
    float decay;  /* lr·weight_decay, 0 for none */
    float c1, c2; /* Adam: alpha; Adamax: lr/(1-b1^t); Nadam: lr·mu_{t+1}/(1-P_{t+1}), lr·(1-mu_t)/(1-P_t) */
    float c3;     /* Nadam: 1/(1-b2^t) */
} kargs;

static const char *const names[] = {"sgd",     "momentum", "nesterov", "adagrad", "rmsprop",
                                    "adam",    "adamax",   "nadam",    "adamw"};
#define N_KINDS ((int)(sizeof names / sizeof names[0]))

static bool valid_kind(nb_optimizer_kind k) { return (int)k >= 0 && (int)k < N_KINDS; }

static int n_state(nb_optimizer_kind k) {
    switch (k) {
    case NB_SGD: return 0;
    case NB_MOMENTUM:
    case NB_NESTEROV:
    case NB_ADAGRAD:
    case NB_RMSPROP: return 1;
    default: return 2;
    }
}

static bool uses_momentum(nb_optimizer_kind k) { return k == NB_MOMENTUM || k == NB_NESTEROV; }
static bool adam_family(nb_optimizer_kind k) {
    return k == NB_ADAM || k == NB_ADAMAX || k == NB_NADAM || k == NB_ADAMW;
}
static bool uses_epsilon(nb_optimizer_kind k) {
    return k == NB_ADAGRAD || k == NB_RMSPROP || adam_family(k);
}

nb_optimizer_config nb_optimizer_defaults(nb_optimizer_kind kind) {
    nb_optimizer_config c;
    memset(&c, 0, sizeof c);
    if (!valid_kind(kind)) kind = NB_SGD;
    c.kind = kind;
    c.lr = kind <= NB_NESTEROV ? 0.01f : 0.001f;
    if (uses_momentum(kind)) c.momentum = 0.9f;
    if (kind == NB_RMSPROP) c.rho = 0.9f;
    if (adam_family(kind)) c.beta1 = 0.9f, c.beta2 = 0.999f;
    if (uses_epsilon(kind)) c.epsilon = 1e-7f;
    if (kind == NB_ADAGRAD) c.initial_accumulator = 0.1f;
    if (kind == NB_ADAMW) c.weight_decay = 0.004f;
    return c;
}

const char *nb_optimizer_name(nb_optimizer_kind kind) {
    return valid_kind(kind) ? names[kind] : "unknown";
}

static bool same_name(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        if (x != *b) return false;
    }
    return *a == *b;
}

bool nb_optimizer_parse(const char *name, nb_optimizer_kind *kind) {
    if (!name) return false;
    for (int k = 0; k < N_KINDS; k++)
        if (same_name(name, names[k])) {
            if (kind) *kind = (nb_optimizer_kind)k;
            return true;
        }
    return false;
}

static bool in_unit(float x) { return x >= 0.0f && x < 1.0f; } /* false for NaN */

static bool check_config(const nb_optimizer_config *c) {
    const nb_optimizer_kind k = c->kind;
    if (!valid_kind(k)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: unknown kind %d", (int)k);
        return false;
    }
    const char *kn = names[k];
    if (!(c->lr > 0.0f) || !isfinite(c->lr)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: lr %g must be positive and finite", kn, (double)c->lr);
        return false;
    }
    if (uses_momentum(k) && !in_unit(c->momentum)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: momentum %g outside [0,1)", kn, (double)c->momentum);
        return false;
    }
    if (k == NB_RMSPROP && !in_unit(c->rho)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: rho %g outside [0,1)", kn, (double)c->rho);
        return false;
    }
    if (adam_family(k) && !in_unit(c->beta1)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: beta1 %g outside [0,1)", kn, (double)c->beta1);
        return false;
    }
    if (adam_family(k) && !in_unit(c->beta2)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: beta2 %g outside [0,1)", kn, (double)c->beta2);
        return false;
    }
    if (uses_epsilon(k) && (!(c->epsilon > 0.0f) || !isfinite(c->epsilon))) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: epsilon %g must be positive and finite", kn,
                      (double)c->epsilon);
        return false;
    }
    if (k == NB_ADAGRAD && (!(c->initial_accumulator >= 0.0f) || !isfinite(c->initial_accumulator))) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: initial_accumulator %g must be >= 0 and finite", kn,
                      (double)c->initial_accumulator);
        return false;
    }
    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: weight_decay %g must be >= 0 and finite", kn,
                      (double)c->weight_decay);
        return false;
    }
    const float clips[3] = {c->clip_value, c->clip_norm, c->clip_global_norm};
    const char *clip_names[3] = {"clip_value", "clip_norm", "clip_global_norm"};
    int set = 0;
    for (int i = 0; i < 3; i++) {
        if (!(clips[i] >= 0.0f) || !isfinite(clips[i])) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: %s %g must be >= 0 and finite (0 is off)", kn,
                          clip_names[i], (double)clips[i]);
            return false;
        }
        set += clips[i] > 0.0f;
    }
    if (set > 1) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %s: at most one of clip_value (%g), clip_norm (%g) and "
                      "clip_global_norm (%g) may be set",
                      kn, (double)c->clip_value, (double)c->clip_norm,
                      (double)c->clip_global_norm);
        return false;
    }
    return true;
}

/* Rounds a float count up to whole 64-byte lines, so every slot's state
 * starts aligned like the block. */
static size_t padded(size_t floats) { return (floats + 15) & ~(size_t)15; }

nb_optimizer *nb_optimizer_new(const nb_optimizer_config *cfg, int n, nb_tensor *const *params) {
    if (!cfg) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: config is NULL");
        return NULL;
    }
    if (!check_config(cfg)) return NULL;
    if (n < 0) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: %d tensors", n);
        return NULL;
    }
    if (n > 0 && !params) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: params is NULL for %d tensors", n);
        return NULL;
    }
    const int per = n_state(cfg->kind);
    size_t floats = 0;
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = params[i];
        if (!t) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: tensor %d is NULL", i);
            return NULL;
        }
        /* a tensor listed twice would be stepped twice and counted twice
         * in the global norm */
        for (int j = 0; j < i; j++)
            if (params[j] == t) {
                nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: tensor %d ('%s') is tensor %d again", i, t->name, j);
                return NULL;
            }
        const size_t p = padded(t->size);
        if (p < t->size || (per && p > (SIZE_MAX / sizeof(float) - floats) / (size_t)per)) {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "optimizer: state for tensor %d ('%s') is too large", i, t->name);
            return NULL;
        }
        floats += (size_t)per * p;
    }

    const size_t head = sizeof(nb_optimizer) + (size_t)n * sizeof(slot);
    nb_optimizer *o = calloc(1, head + (size_t)n * sizeof(nb_tensor *));
    float *state = floats ? nb__aligned_alloc(floats * sizeof(float)) : NULL;
    if (!o || (floats && !state)) {
        free(o);
        free(state);
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "optimizer: out of memory for the state of %d tensors (%zu floats)", n,
                      floats);
        return NULL;
    }
    o->cfg = *cfg;
    o->n = n;
    o->state = state;
    o->state_floats = floats;
    o->params = (nb_tensor **)((char *)o + head);
    float *s = state;
    for (int i = 0; i < n; i++) {
        o->params[i] = params[i];
        o->slots[i].t = params[i];
        const size_t p = padded(params[i]->size);
        if (per >= 1) o->slots[i].s0 = s, s += p;
        if (per >= 2) o->slots[i].s1 = s, s += p;
    }
    nb__runtime_init(); /* the thread count NB_PARALLEL_FOR reads */
    nb_optimizer_reset(o);
    return o;
}

void nb_optimizer_free(nb_optimizer *o) {
    if (!o) return;
    free(o->state);
    free(o);
}

void nb_optimizer_reset(nb_optimizer *o) {
    if (!o) return;
    if (o->state_floats) memset(o->state, 0, o->state_floats * sizeof(float));
    if (o->cfg.kind == NB_ADAGRAD)
        for (int i = 0; i < o->n; i++) {
            float *a = o->slots[i].s0, a0 = o->cfg.initial_accumulator;
            for (size_t j = 0; j < o->slots[i].t->size; j++) a[j] = a0;
        }
    o->steps = 0;
    o->nadam_prod = 1.0;
}

/* w, g, s0, s1: [lo, hi) of one tensor's data, gradient and state.
 * Each kind's loop is separate so that it vectorizes. */
NB_KERNEL_CLONES static void update(const kargs *k, float *restrict w, const float *restrict g, float *restrict s0,
                   float *restrict s1, size_t lo, size_t hi) {
    const float lr = k->lr, eps = k->eps;
    if (k->decay != 0.0f)
        for (size_t i = lo; i < hi; i++) w[i] -= w[i] * k->decay;
    switch (k->kind) {
    case NB_SGD:
        for (size_t i = lo; i < hi; i++) w[i] -= lr * g[i];
        break;
    case NB_MOMENTUM:
        for (size_t i = lo; i < hi; i++) {
            s0[i] = k->mom * s0[i] - lr * g[i];
            w[i] += s0[i];
        }
        break;
    case NB_NESTEROV:
        for (size_t i = lo; i < hi; i++) {
            s0[i] = k->mom * s0[i] - lr * g[i];
            w[i] += k->mom * s0[i] - lr * g[i];
        }
        break;
    case NB_ADAGRAD:
        for (size_t i = lo; i < hi; i++) {
            s0[i] += g[i] * g[i];
            w[i] -= lr * g[i] / sqrtf(s0[i] + eps);
        }
        break;
    case NB_RMSPROP: {
        const float rho = k->rho, rho1 = 1.0f - k->rho;
        for (size_t i = lo; i < hi; i++) {
            s0[i] = rho * s0[i] + rho1 * (g[i] * g[i]);
            w[i] -= lr * g[i] / sqrtf(s0[i] + eps);
        }
        break;
    }
    case NB_ADAM:
    case NB_ADAMW: {
        const float b1 = k->b1, b2 = k->b2, b1c = 1.0f - k->b1, b2c = 1.0f - k->b2, alpha = k->c1;
        for (size_t i = lo; i < hi; i++) {
            s0[i] = b1 * s0[i] + b1c * g[i];
            s1[i] = b2 * s1[i] + b2c * (g[i] * g[i]);
            w[i] -= alpha * s0[i] / (sqrtf(s1[i]) + eps);
        }
        break;
    }
    case NB_ADAMAX: {
        const float b1 = k->b1, b2 = k->b2, b1c = 1.0f - k->b1, c = k->c1;
        for (size_t i = lo; i < hi; i++) {
            s0[i] = b1 * s0[i] + b1c * g[i];
            const float decayed = b2 * s1[i], a = fabsf(g[i]);
            s1[i] = decayed > a ? decayed : a; /* not fmaxf: a NaN gradient must stay NaN */
            w[i] -= c * s0[i] / (s1[i] + eps);
        }
        break;
    }
    case NB_NADAM: {
        const float b1 = k->b1, b2 = k->b2, b1c = 1.0f - k->b1, b2c = 1.0f - k->b2;
        const float cm = k->c1, cg = k->c2, cv = k->c3;
        for (size_t i = lo; i < hi; i++) {
            s0[i] = b1 * s0[i] + b1c * g[i];
            s1[i] = b2 * s1[i] + b2c * (g[i] * g[i]);
            w[i] -= (cm * s0[i] + cg * g[i]) / (sqrtf(s1[i] * cv) + eps);
        }
        break;
    }
    }
}

static double nadam_mu(double b1, long t) { return b1 * (1.0 - 0.5 * pow(0.96, (double)t)); }

void nb_optimizer_step(nb_optimizer *o) {
    if (!o) return;
    const nb_optimizer_config *c = &o->cfg;
    if (c->clip_value > 0.0f)
        nb_clip_by_value(o->n, o->params, c->clip_value);
    else if (c->clip_norm > 0.0f)
        nb_clip_by_norm(o->n, o->params, c->clip_norm);
    else if (c->clip_global_norm > 0.0f)
        nb_clip_by_global_norm(o->n, o->params, c->clip_global_norm);

    const long t = o->steps + 1;
    const double lr = c->lr, b1 = c->beta1, b2 = c->beta2;
    kargs k = {.kind = c->kind, .lr = c->lr, .mom = c->momentum, .rho = c->rho, .b1 = c->beta1,
               .b2 = c->beta2, .eps = c->epsilon, .decay = (float)(lr * c->weight_decay)};
    switch (c->kind) {
    case NB_ADAM:
    case NB_ADAMW:
        k.c1 = (float)(lr * sqrt(1.0 - pow(b2, (double)t)) / (1.0 - pow(b1, (double)t)));
        break;
    case NB_ADAMAX: k.c1 = (float)(lr / (1.0 - pow(b1, (double)t))); break;
    case NB_NADAM: {
        const double mu = nadam_mu(b1, t), mu_next = nadam_mu(b1, t + 1);
        const double p = o->nadam_prod * mu, p_next = p * mu_next;
        o->nadam_prod = p;
        k.c1 = (float)(lr * mu_next / (1.0 - p_next));
        k.c2 = (float)(lr * (1.0 - mu) / (1.0 - p));
        k.c3 = (float)(1.0 / (1.0 - pow(b2, (double)t)));
        break;
    }
    default: break;
    }

    for (int p = 0; p < o->n; p++) {
        const slot *sl = &o->slots[p];
        nb_tensor *tn = sl->t;
        if (!tn->trainable || !tn->grad) continue;
        float *w = tn->data, *s0 = sl->s0, *s1 = sl->s1;
        const float *g = tn->grad;
        const size_t size = tn->size, blocks = (size + BLOCK - 1) / BLOCK;
        /* a per-tensor rate scales every term the rate multiplies (decay included) */
        kargs kt = k;
        const float scale = tn->lr_scale;
        if (scale > 0.0f && scale != 1.0f) kt.lr *= scale, kt.decay *= scale, kt.c1 *= scale, kt.c2 *= scale;
        NB_PARALLEL_FOR_IF(size >= NB_PAR_MIN, b, blocks, {
            const size_t lo = b * BLOCK, hi = lo + BLOCK < size ? lo + BLOCK : size;
            update(&kt, w, g, s0, s1, lo, hi);
        });
    }
    o->steps = t;
}

float nb_optimizer_lr(const nb_optimizer *o) { return o ? o->cfg.lr : 0.0f; }

void nb_optimizer_set_lr(nb_optimizer *o, float lr) {
    if (!o) return;
    if (!(lr >= 0.0f) || !isfinite(lr)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: learning rate %g ignored: must be >= 0 and finite",
                      (double)lr);
        return;
    }
    o->cfg.lr = lr;
}

bool nb_optimizer_has_momentum(const nb_optimizer *o) {
    return o && (uses_momentum(o->cfg.kind) || adam_family(o->cfg.kind));
}

float nb_optimizer_momentum(const nb_optimizer *o) {
    if (!o) return 0.0f;
    if (uses_momentum(o->cfg.kind)) return o->cfg.momentum;
    if (adam_family(o->cfg.kind)) return o->cfg.beta1;
    return 0.0f;
}

void nb_optimizer_set_momentum(nb_optimizer *o, float m) {
    if (!nb_optimizer_has_momentum(o)) return;
    if (!in_unit(m)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: momentum %g ignored: outside [0,1)", (double)m);
        return;
    }
    if (uses_momentum(o->cfg.kind))
        o->cfg.momentum = m;
    else
        o->cfg.beta1 = m;
}

long nb_optimizer_steps(const nb_optimizer *o) { return o ? o->steps : 0; }

const nb_optimizer_config *nb_optimizer_config_of(const nb_optimizer *o) { return o ? &o->cfg : NULL; }

/* ---- state: read, set and copy ---- */

/* The names of each kind's arrays, as in the formulas of nabla/optim.h. */
static const char *state_name(nb_optimizer_kind k, int j) {
    switch (k) {
    case NB_MOMENTUM:
    case NB_NESTEROV: return "v";
    case NB_ADAGRAD: return "a";
    case NB_RMSPROP: return "s";
    case NB_ADAMAX: return j ? "u" : "m";
    default: return j ? "v" : "m";
    }
}

int nb_optimizer_state_count(const nb_optimizer *o) { return o ? o->n * n_state(o->cfg.kind) : 0; }

bool nb_optimizer_state(nb_optimizer *o, int i, nb_optimizer_state_entry *out) {
    if (!o || !out) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: state: %s is NULL",
                      o ? "the entry pointer" : "the optimizer");
        return false;
    }
    const int per = n_state(o->cfg.kind), count = o->n * per;
    if (i < 0 || i >= count) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT,
                      "optimizer: state entry %d outside [0,%d) (%s has %d per tensor, %d tensors)", i, count,
                      names[o->cfg.kind], per, o->n);
        return false;
    }
    const slot *sl = &o->slots[i / per];
    const int j = i % per;
    *out = (nb_optimizer_state_entry){.name = state_name(o->cfg.kind, j), .param = sl->t, .param_index = i / per,
                                      .data = j ? sl->s1 : sl->s0, .size = sl->t->size};
    return true;
}

double nb_optimizer_nadam_product(const nb_optimizer *o) { return o ? o->nadam_prod : 1.0; }

bool nb_optimizer_set_steps(nb_optimizer *o, long steps, double nadam_product) {
    if (!o) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: set_steps: the optimizer is NULL");
        return false;
    }
    if (steps < 0) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: set_steps: steps %ld must be >= 0", steps);
        return false;
    }
    if (o->cfg.kind == NB_NADAM && !(nadam_product > 0.0 && nadam_product <= 1.0)) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: set_steps: nadam's product %g outside (0,1]", nadam_product);
        return false;
    }
    o->steps = steps;
    o->nadam_prod = o->cfg.kind == NB_NADAM ? nadam_product : 1.0;
    return true;
}

bool nb_optimizer_copy_state(nb_optimizer *dst, const nb_optimizer *src) {
    if (!dst || !src) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: copy_state: %s optimizer is NULL",
                      dst ? "the source" : "the destination");
        return false;
    }
    if (dst->cfg.kind != src->cfg.kind || dst->n != src->n) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "optimizer: copy_state: %s with %d tensors into %s with %d tensors",
                      names[src->cfg.kind], src->n, names[dst->cfg.kind], dst->n);
        return false;
    }
    for (int i = 0; i < src->n; i++)
        if (src->slots[i].t->size != dst->slots[i].t->size) {
            nb__set_error(NB_ERR_INVALID_ARGUMENT,
                          "optimizer: copy_state: tensor %d ('%s') has %zu elements, the destination's ('%s') %zu", i,
                          src->slots[i].t->name, src->slots[i].t->size, dst->slots[i].t->name, dst->slots[i].t->size);
            return false;
        }
    const int per = n_state(src->cfg.kind);
    for (int i = 0; i < src->n; i++) {
        const size_t bytes = src->slots[i].t->size * sizeof(float);
        if (per >= 1 && bytes) memcpy(dst->slots[i].s0, src->slots[i].s0, bytes);
        if (per >= 2 && bytes) memcpy(dst->slots[i].s1, src->slots[i].s1, bytes);
    }
    dst->steps = src->steps;
    dst->nadam_prod = src->nadam_prod;
    return true;
}
