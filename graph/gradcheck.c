/* graph/gradcheck.c — analytic gradients against central differences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/gradcheck.h"

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
        size_t n = p->tensor->size;
        size_t stride = max_per && n > max_per ? n / max_per : 1;
        for (size_t k = 0; k < n; k += stride) {
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
                char s[NB_SHAPE_STR_LEN];
                res.max_rel_error = rel;
                res.analytic = ana;
                res.numeric = num;
                snprintf(res.where, sizeof res.where, "param '%s' %s index %zu", p->name,
                         nb__shape(p, s), k);
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
