/* A user's benchmark of their own op, built by tests/test_bench_install.sh
 * against an installed nabla with pkg-config nabla-bench only (no source
 * tree): y = x^3 as an nb_custom_op, through the nabla-bench harness. */
#include <nabla/bench.h>

static int cube_shape(int n, const nb_shape *in, nb_shape *out, void *u, char *err, size_t len) {
    (void)n, (void)u, (void)err, (void)len;
    *out = in[0];
    return 0;
}
static void cube_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys, void *u) {
    (void)n, (void)s, (void)u;
    for (size_t i = 0, size = nb_shape_size(ys); i < size; i++) y[i] = in[0][i] * in[0][i] * in[0][i];
}
static void cube_bwd(int n, const float *const *in, const nb_shape *s, const float *y, const float *dy,
                     const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)s, (void)y, (void)u;
    if (!din[0]) return;
    for (size_t i = 0, size = nb_shape_size(ys); i < size; i++) din[0][i] += 3.0f * in[0][i] * in[0][i] * dy[i];
}
static const nb_custom_op cube = {"user_cube", cube_shape, cube_fwd, cube_bwd};

static nb_node *build_cube(nb_graph *g, nb_node *const *in, void *user) { return nb_custom(g, &cube, 1, in, user); }

int main(int argc, char **argv) {
    static const nbb_op mine[] = {
        {"user_cube", "x", build_cube, NULL, {8, 0, 0}, {16, 0, 0}, false, true},
    };
    return nbb_main(argc, argv, mine, 1);
}
