/* graph/gradcheck.c — analytic gradients against central differences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/gradcheck.h"

/* splitmix64: the sampling stream of a seed (no need for Philox here). */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Which elements of a tensor of n to check, in increasing order: all; or m
 * of them spread evenly (i·n/m); or, with a seed, m drawn without repeats
 * by selection sampling (Knuth's algorithm S: element k is taken with
 * probability (still needed)/(still left)), so nothing is allocated. */
typedef struct sampler {
    size_t n, m, k, taken;
    uint64_t state;
    bool random;
} sampler;

static sampler sampler_new(size_t n, size_t max, uint64_t seed, size_t tensor_no) {
    sampler s = {.n = n, .m = max && max < n ? max : n};
    s.random = seed != 0 && s.m < n;
    s.state = seed ^ (0x632be59bd9b4e019u * (tensor_no + 1));
    return s;
}

/* The next index to check, or false when done. */
static bool sampler_next(sampler *s, size_t *idx) {
    if (s->taken >= s->m) return false;
    if (s->m == s->n) {
        *idx = s->taken++;
        return true;
    }
    if (!s->random) {
        /* taken·n/m without overflowing taken·n */
        *idx = s->taken * (s->n / s->m) + s->taken * (s->n % s->m) / s->m;
        s->taken++;
        return true;
    }
    for (; s->k < s->n; s->k++) {
        const double u = (double)(splitmix64(&s->state) >> 11) * 0x1.0p-53; /* [0, 1) */
        if (u * (double)(s->n - s->k) < (double)(s->m - s->taken)) {
            *idx = s->k++;
            s->taken++;
            return true;
        }
    }
    return false; /* not reached: the last elements are taken with probability 1 */
}

/* "param 'w' [3,4] index 7: w[1,3]" into res, with the coordinates. */
static void describe(nb_gradcheck_result *res, const nb_node *p, size_t k) {
    const nb_tensor *t = p->tensor;
    char s[NB_SHAPE_STR_LEN], idx[16 * NB_MAX_RANK + 2];
    size_t rest = k, len = 0;
    res->index = k;
    res->rank = t->shape.rank;
    for (int d = t->shape.rank - 1; d >= 0; d--) {
        res->coord[d] = (int)(rest % (size_t)t->shape.dim[d]);
        rest /= (size_t)t->shape.dim[d];
    }
    idx[len++] = '[';
    for (int d = 0; d < t->shape.rank; d++)
        len += (size_t)snprintf(idx + len, sizeof idx - len, d ? ",%d" : "%d", res->coord[d]);
    snprintf(idx + len, sizeof idx - len, "]");
    snprintf(res->where, sizeof res->where, "param '%s' %s index %zu: %s%s", p->name, nb__shape(p, s), k,
             t->name[0] ? t->name : p->name, idx);
}

static double loss_at(nb_graph *g, nb_node *loss, uint64_t step) {
    if (nb__forward_at(g, NB_TRAINING, step) != NB_OK) return NAN;
    return (double)loss->value[0];
}

nb_status nb_gradcheck(nb_graph *g, nb_node *loss, const nb_gradcheck_opts *opts,
                       nb_gradcheck_result *out) {
    nb_gradcheck_result res = {0};
    if (out) *out = res;
    if (!g || g->status != NB_OK) return NB_ERROR;
    if (!loss || loss->graph != g) return nb__fail(g, "gradcheck: loss is NULL or from another graph");
    if (!out) return nb__fail(g, "gradcheck: result pointer is NULL");
    double h = opts && opts->step > 0 ? opts->step : 5e-3;
    double floor = opts && opts->floor > 0 ? opts->floor : 1e-2;
    size_t max_per = opts ? opts->max_per_tensor : 0;
    uint64_t seed = opts ? opts->seed : 0;

    uint64_t step = g->step;
    if (nb__forward_at(g, NB_TRAINING, step) != NB_OK) return NB_ERROR;
    if (loss->size != 1) {
        char s[NB_SHAPE_STR_LEN];
        return nb__fail(g, "gradcheck: loss '%s' has shape %s, it must have one element", loss->name,
                        nb__shape(loss, s));
    }
    if (nb_backward(g, loss) != NB_OK) return NB_ERROR;

    /* The analytic gradients are overwritten by nothing below: forward
     * passes do not touch parameter gradients. */
    for (int i = 0; i <= loss->id; i++) {
        nb_node *p = g->nodes[i];
        if (p->kind != NB_KIND_PARAM || !p->grad) continue;
        sampler smp = sampler_new(p->tensor->size, max_per, seed, (size_t)i);
        for (size_t k; sampler_next(&smp, &k);) {
            float *w = &p->tensor->data[k];
            const float w0 = *w;
            double hk = h * fmax(1.0, fabs((double)w0));
            *w = (float)((double)w0 + hk);
            double up_w = (double)*w;
            double lp = loss_at(g, loss, step);
            *w = (float)((double)w0 - hk);
            double down_w = (double)*w;
            double lm = loss_at(g, loss, step);
            *w = w0;
            if (g->status != NB_OK) return NB_ERROR;
            double num = (lp - lm) / (up_w - down_w); /* the step actually taken in float */
            double ana = (double)p->grad[k];
            double den = fmax(fmax(fabs(ana), fabs(num)), floor);
            double rel = fabs(ana - num) / den;
            if (isnan(rel)) rel = INFINITY;
            res.checked++;
            if (rel > res.max_rel_error || res.checked == 1) {
                res.max_rel_error = rel;
                res.analytic = ana;
                res.numeric = num;
                describe(&res, p, k);
            }
        }
    }
    /* leave the graph's values as they were after the analytic pass */
    nb__forward_at(g, NB_TRAINING, step);
    g->step = step + 1;
    if (g->status != NB_OK) return NB_ERROR;
    if (res.checked == 0) return nb__fail(g, "gradcheck: no trainable parameter reaches the loss");
    *out = res;
    return NB_OK;
}

bool nb_gradcheck_passes(nb_graph *g, nb_node *loss, const nb_gradcheck_opts *opts, nb_gradcheck_result *out,
                         char *msg, size_t msg_size) {
    nb_gradcheck_result r;
    const double tol = opts && opts->tolerance > 0 ? opts->tolerance : 1e-2;
    const nb_status st = nb_gradcheck(g, loss, opts, &r);
    if (out) *out = r;
    bool ok = false;
    char buf[512];
    if (st != NB_OK)
        snprintf(buf, sizeof buf, "gradcheck failed to run: %s", g ? nb_graph_error(g) : "the graph is NULL");
    else if (r.checked == 0)
        snprintf(buf, sizeof buf, "gradcheck checked nothing");
    else if (!(r.max_rel_error <= tol))
        snprintf(buf, sizeof buf, "gradcheck: relative error %.3g > %g at %s (analytic %.9g, numeric %.9g)",
                 r.max_rel_error, tol, r.where, r.analytic, r.numeric);
    else {
        ok = true;
        snprintf(buf, sizeof buf, "gradcheck: relative error %.3g <= %g over %zu elements", r.max_rel_error, tol,
                 r.checked);
    }
    if (msg && msg_size) snprintf(msg, msg_size, "%s", buf);
    return ok;
}

int nb_compare(const float *actual, const float *expected, size_t n, double abs_tol, double rel_tol,
               nb_compare_result *out) {
    nb_compare_result r = {0};
    double worst = -INFINITY;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double a = actual[i], e = expected[i];
        double err = fabs(a - e);
        double excess = isnan(err) ? INFINITY : err - abs_tol - rel_tol * fabs(e);
        if (isnan(a) != isnan(e) || excess > 0) ok = 0;
        if (isnan(a) && isnan(e)) excess = -INFINITY;
        if (excess > worst || i == 0) {
            worst = excess;
            r.worst_index = i;
            r.actual = a;
            r.expected = e;
            r.abs_error = err;
        }
    }
    if (out) *out = r;
    return ok;
}
