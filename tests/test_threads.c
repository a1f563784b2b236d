/* One thread count for OpenMP and BLIS, from the environment or a call, and
 * results that do not depend on it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

/* Each Criterion test runs in a fresh process, so the environment can be set
 * before nabla's first call reads it. */
Test(threads, nabla_num_threads_wins_over_omp_num_threads) {
    setenv("NABLA_NUM_THREADS", "3", 1);
    setenv("OMP_NUM_THREADS", "5", 1);
    cr_assert_eq(nb_get_num_threads(), 3);
}

Test(threads, omp_num_threads_is_the_fallback) {
    unsetenv("NABLA_NUM_THREADS");
    setenv("OMP_NUM_THREADS", "2,1", 1);
    cr_assert_eq(nb_get_num_threads(), 2);
}

Test(threads, the_call_sets_the_count) {
    nb_set_num_threads(2);
    cr_assert_eq(nb_get_num_threads(), 2);
    nb_set_num_threads(0);
    cr_assert_eq(nb_get_num_threads(), 1, "a count below 1 means 1");
}

Test(threads, blis_runs_optimized_kernels_on_this_cpu) {
    unsetenv("BLIS_ARCH_TYPE");
    const char *kernel = nb_blis_kernel();
    cr_log_info("BLIS sub-configuration %s, sgemm micro-kernel %s", nb_blis_arch(), kernel);
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        cr_assert_str_neq(kernel, "refrnce", "BLIS fell back to its reference kernels (%s)", nb_blis_arch());
        cr_assert_str_neq(nb_blis_arch(), "generic");
    }
#endif
}

/* loss-free forward+backward of x·w + b at the given thread count */
static void run(int threads, nb_tensor *x, nb_tensor *w, nb_tensor *b, float *y_out, float *dw_out) {
    nb_set_num_threads(threads);
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_add(g, nb_matmul(g, nb_param(g, x), nb_param(g, w)), nb_param(g, b));
    nb_node *loss = nb_sum(g, nb_mul(g, y, y));
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    memcpy(y_out, nb_node_value(y), nb_node_size(y) * sizeof(float));
    memcpy(dw_out, w->grad, w->size * sizeof(float));
    nb_graph_free(g);
}

Test(threads, one_and_two_threads_agree) {
    /* BLIS splits the product differently per thread count, so the products
     * agree within rounding (stated: 1e-5 relative), and elementwise ops on
     * the same products are exact. */
    nb_tensor *x = t_tensor("x", 2, (int[]){256, 784}, -1, 1, 1);
    nb_tensor *w = t_tensor("w", 2, (int[]){784, 300}, -0.05f, 0.05f, 2);
    nb_tensor *b = t_tensor("b", 1, (int[]){300}, -1, 1, 3);
    size_t ny = 256 * 300;
    float *y1 = malloc(ny * sizeof(float)), *y2 = malloc(ny * sizeof(float));
    float *d1 = malloc(w->size * sizeof(float)), *d2 = malloc(w->size * sizeof(float));
    run(1, x, w, b, y1, d1);
    run(2, x, w, b, y2, d2);
    nb_assert_near(y2, y1, ny, 1e-5, 1e-5);
    nb_assert_near(d2, d1, w->size, 1e-4, 1e-5);
    free(y1), free(y2), free(d1), free(d2);
    nb_tensor_free(x), nb_tensor_free(w), nb_tensor_free(b);
}
