/* bench-custom-act — what a custom activation costs: Mish several ways,
 * forward and backward, through the nabla-bench harness (nabla/bench.h):
 *   (a)  mish_elementwise  nb_elementwise with f and f' over arrays (the fast
 *                          path of nabla/custom.h), compiled as a user would
 *   (a') mish_ew_clones    the same source, its loops cloned for AVX-512 and
 *                          AVX2 (target_clones) as nabla's kernels are
 *   (b)  mish_ops          nabla's own ops: nb_mul(x, nb_tanh(nb_softplus(x)))
 *   (c)  mish_custom       an nb_custom_op calling (a)'s f and f' over the
 *                          whole tensor on one thread
 *   (d)  swish             the built-in x·sigmoid(x), for reference
 * then a table of the medians with each over (b) per shape, pass and thread
 * count, all from the same process. Issue 8's goal: (a) not 10x slower
 * than (b), ideally faster.
 *
 *   bench-custom-act [nabla-bench's flags]
 *
 * Without --op it runs all five; without --shapes, [32,1000], [256,1000]
 * and [1024,1000]; the threads are nabla-bench's default, 1 and 2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/bench.h"

/* Mish: x·tanh(softplus(x)) = x·p/(p + 2), p = e(e + 2), e = exp(x); x
 * itself above 20 (where e² would overflow). */
static inline __attribute__((always_inline)) void mish_f_body(size_t n, const float *x, float *y) {
    nb_vexp(n, x, y);
    for (size_t i = 0; i < n; i++) {
        const float e = y[i], p = e * (e + 2);
        y[i] = x[i] > 20 ? x[i] : x[i] * p / (p + 2);
    }
}

/* dx += dy·(t + x·(1 - t²)·sigmoid(x)), t = tanh(softplus(x)); exp in
 * chunks of a stack buffer, so several threads may run it at once. */
static inline __attribute__((always_inline)) void mish_df_body(size_t n, const float *x, const float *dy,
                                                                float *dx) {
    enum { CHUNK = 256 };
    float e[CHUNK];
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        const size_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        const float *xs = x + i0, *dys = dy + i0;
        float *dxs = dx + i0;
        nb_vexp(m, xs, e);
        for (size_t i = 0; i < m; i++) {
            const float p = e[i] * (e[i] + 2), t = p / (p + 2), s = e[i] / (1 + e[i]);
            dxs[i] += xs[i] > 20 ? dys[i] : dys[i] * (t + xs[i] * (1 - t * t) * s);
        }
    }
}

/* As a user writes them, compiled with the project's flags (SSE2 without
 * -Dnative=true)... */
static void mish_f(size_t n, const float *x, float *y, void *u) {
    (void)u;
    mish_f_body(n, x, y);
}
static void mish_df(size_t n, const float *x, const float *y, const float *dy, float *dx, void *u) {
    (void)y, (void)u;
    mish_df_body(n, x, dy, dx);
}

/* ...and the same source as AVX-512, AVX2 and default clones picked at run
 * time, as nabla's own kernels are: what the user's loops can gain (nb_vexp
 * inside them is the library's, as it is). */
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
CLONES static void mish_f_clones(size_t n, const float *x, float *y, void *u) {
    (void)u;
    mish_f_body(n, x, y);
}
CLONES static void mish_df_clones(size_t n, const float *x, const float *y, const float *dy, float *dx, void *u) {
    (void)y, (void)u;
    mish_df_body(n, x, dy, dx);
}

/* (a) */
static const nb_elementwise_op mish_ew = {"mish", mish_f, mish_df};
static nb_node *build_a(nb_graph *g, nb_node *const *in, void *u) { return nb_elementwise(g, &mish_ew, in[0], u); }

/* (a') */
static const nb_elementwise_op mish_ew_clones = {"mish", mish_f_clones, mish_df_clones};
static nb_node *build_a2(nb_graph *g, nb_node *const *in, void *u) {
    return nb_elementwise(g, &mish_ew_clones, in[0], u);
}

/* (b) */
static nb_node *build_b(nb_graph *g, nb_node *const *in, void *u) {
    (void)u;
    return nb_mul(g, in[0], nb_tanh(g, nb_softplus(g, in[0])));
}

/* (c) */
static int same_shape(int n, const nb_shape *in, nb_shape *out, void *u, char *err, size_t len) {
    (void)n, (void)u, (void)err, (void)len;
    *out = in[0];
    return 0;
}
static void custom_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys, void *u) {
    (void)n, (void)s;
    mish_f(nb_shape_size(ys), in[0], y, u);
}
static void custom_bwd(int n, const float *const *in, const nb_shape *s, const float *y, const float *dy,
                       const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)s;
    if (din[0]) mish_df(nb_shape_size(ys), in[0], y, dy, din[0], u);
}
static const nb_custom_op mish_custom = {"mish", same_shape, custom_fwd, custom_bwd};
static nb_node *build_c(nb_graph *g, nb_node *const *in, void *u) { return nb_custom(g, &mish_custom, 1, in, u); }

/* forward reads x and writes y; backward reads x and dy and updates dx */
static const nbb_op ops[] = {
    {"mish_elementwise", "x", build_a, NULL, {8, 0, 0}, {16, 0, 0}, false, true},
    {"mish_ew_clones", "x", build_a2, NULL, {8, 0, 0}, {16, 0, 0}, false, true},
    {"mish_ops", "x", build_b, NULL, {8, 0, 0}, {16, 0, 0}, false, true},
    {"mish_custom", "x", build_c, NULL, {8, 0, 0}, {16, 0, 0}, false, true},
};
enum { NV = 5 };
static const char *const names[NV] = {"mish_elementwise", "mish_ops", "mish_custom", "swish", "mish_ew_clones"};

/* ---- the ratio table, from the harness's rows ---- */

enum { MAX_ROWS = 512 };
static struct {
    char shape[32], pass[4];
    int threads;
    double us[NV];     /* net median per variant, NAN when absent */
    bool busy;        /* any of them timed while others took > 10% of the CPUs */
} rows[MAX_ROWS];
static int n_rows;

static void collect(const nbb_result *r, void *u) {
    (void)u;
    int v = 0;
    while (v < NV && strcmp(r->op, names[v])) v++;
    if (v == NV) return;
    int i = 0;
    while (i < n_rows && !(rows[i].threads == r->threads && !strcmp(rows[i].shape, r->shape) &&
                           !strcmp(rows[i].pass, r->pass)))
        i++;
    if (i == n_rows) {
        if (n_rows == MAX_ROWS) return;
        n_rows++;
        snprintf(rows[i].shape, sizeof rows[i].shape, "%s", r->shape);
        snprintf(rows[i].pass, sizeof rows[i].pass, "%s", r->pass);
        rows[i].threads = r->threads;
        for (int k = 0; k < NV; k++) rows[i].us[k] = NAN;
    }
    rows[i].us[v] = r->net_us;
    rows[i].busy |= r->others_cpu_share > 0.10;
}

static void cell(double v) {
    if (isfinite(v) && v > 0) printf(" %9.2f", v);
    else printf(" %9s", "-");
}

static void ratio(double a, double b) {
    if (isfinite(a) && isfinite(b) && a > 0 && b > 0) printf(" %6.2f", a / b);
    else printf(" %6s", "-");
}

int main(int argc, char **argv) {
    bool has_op = false, has_shapes = false, json = false;
    for (int i = 1; i < argc; i++) {
        has_op |= !strcmp(argv[i], "--op");
        has_shapes |= !strcmp(argv[i], "--shapes");
        json |= !strcmp(argv[i], "--json");
    }
    char **args = malloc(sizeof *args * (size_t)(argc + 5));
    if (!args) return 1;
    int n = 0;
    args[n++] = argv[0];
    if (!has_op) args[n++] = "--op", args[n++] = "mish_elementwise,mish_ew_clones,mish_ops,mish_custom,swish";
    if (!has_shapes) args[n++] = "--shapes", args[n++] = "32x1000,256x1000,1024x1000";
    for (int i = 1; i < argc; i++) args[n++] = argv[i];
    args[n] = NULL;
    nbb_on_result(collect, NULL);
    int rc = nbb_main(n, args, ops, (int)(sizeof ops / sizeof ops[0]));
    free(args);
    if (json || !n_rows) return rc;
    printf("\nMish, net median us: (a) nb_elementwise, (a') the same with its loops cloned for AVX-512/AVX2,\n"
           "(b) from nabla's ops, (c) serial nb_custom_op, (d) built-in swish for reference;\n"
           "ratios over (b): below 1 = faster than (b). *: others took > 10%% of the CPUs meanwhile\n");
    printf("%-12s %3s %-4s %9s %9s %9s %9s %9s %6s %6s %6s %6s\n", "shape", "thr", "pass", "(a)", "(a')", "(b)",
           "(c)", "(d)", "a/b", "a'/b", "c/b", "d/b");
    static const int order[NV] = {0, 4, 1, 2, 3};
    for (int i = 0; i < n_rows; i++) {
        printf("%-12s %3d %-4s", rows[i].shape, rows[i].threads, rows[i].pass);
        for (int k = 0; k < NV; k++) cell(rows[i].us[order[k]]);
        ratio(rows[i].us[0], rows[i].us[1]);
        ratio(rows[i].us[4], rows[i].us[1]);
        ratio(rows[i].us[2], rows[i].us[1]);
        ratio(rows[i].us[3], rows[i].us[1]);
        printf("%s\n", rows[i].busy ? " *" : "");
    }
    return rc;
}
