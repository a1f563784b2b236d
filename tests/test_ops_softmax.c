/* softmax, log_softmax: values against a double-precision reference along
 * the last axis, rows summing to 1, huge logits, gradients, shape errors,
 * batch changes, and results independent of the thread count. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

/* ref = softmax (or log-softmax) of each row of x ([rows, len]) in double. */
static void reference(const float *x, size_t rows, size_t len, bool log_out, float *ref) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * len;
        double m = -INFINITY, s = 0.0;
        for (size_t j = 0; j < len; j++) m = fmax(m, xr[j]);
        for (size_t j = 0; j < len; j++) s += exp((double)xr[j] - m);
        for (size_t j = 0; j < len; j++) {
            double lp = (double)xr[j] - m - log(s);
            ref[r * len + j] = (float)(log_out ? lp : exp(lp));
        }
    }
}

typedef nb_node *(*unary_fn)(nb_graph *, nb_node *);

/* Builds f(param x) for x of the given shape, checks values against the
 * reference and the gradient through a weighted sum. */
static void check_values_and_gradient(unary_fn f, bool log_out, int rank, const int *dims) {
    nb_tensor *x = t_tensor("x", rank, dims, -3, 3, 11), *w;
    nb_graph *g = nb_graph_new();
    nb_node *y = f(g, nb_param(g, x));
    nb_node *loss = t_weighted_sum(g, y, &w, 12);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    nb_shape s = nb_node_shape(y);
    cr_assert_eq(s.rank, rank);
    for (int d = 0; d < rank; d++) cr_assert_eq(s.dim[d], dims[d]);
    size_t len = (size_t)dims[rank - 1], rows = x->size / len;
    float *ref = malloc(x->size * sizeof *ref);
    reference(x->data, rows, len, log_out, ref);
    nb_assert_near(nb_node_value(y), ref, x->size, 1e-6, 1e-5);
    /* tolerance 1e-2: smooth everywhere, float32 differences with h = 5e-3 */
    nb_assert_gradcheck(g, loss, 1e-2);
    free(ref);
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
}

Test(softmax, softmax_forward_matches_reference_and_gradcheck) {
    check_values_and_gradient(nb_softmax, false, 2, (int[]){4, 5});
}

Test(softmax, softmax_works_along_the_last_axis_of_rank3) {
    check_values_and_gradient(nb_softmax, false, 3, (int[]){2, 3, 4});
}

Test(softmax, softmax_of_a_vector_is_one_row) {
    check_values_and_gradient(nb_softmax, false, 1, (int[]){7});
}

Test(softmax, log_softmax_forward_matches_reference_and_gradcheck) {
    check_values_and_gradient(nb_log_softmax, true, 2, (int[]){4, 5});
}

Test(softmax, log_softmax_works_along_the_last_axis_of_rank3) {
    check_values_and_gradient(nb_log_softmax, true, 3, (int[]){2, 3, 4});
}

Test(softmax, rows_sum_to_one) {
    nb_tensor *x = t_tensor("x", 2, (int[]){6, 9}, -8, 8, 21);
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_softmax(g, nb_param(g, x));
    nb_node *ly = nb_log_softmax(g, nb_param(g, x));
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    const float *v = nb_node_value(y), *lv = nb_node_value(ly);
    for (int r = 0; r < 6; r++) {
        double s = 0.0, ls = 0.0;
        for (int j = 0; j < 9; j++) {
            cr_assert(v[r * 9 + j] >= 0.0f && v[r * 9 + j] <= 1.0f);
            s += v[r * 9 + j];
            ls += exp((double)lv[r * 9 + j]);
        }
        cr_assert(fabs(s - 1.0) < 1e-5, "row %d of softmax sums to %.9g", r, s);
        cr_assert(fabs(ls - 1.0) < 1e-5, "row %d of exp(log_softmax) sums to %.9g", r, ls);
    }
    nb_graph_free(g);
    nb_tensor_free(x);
}

Test(softmax, huge_logits_stay_finite_and_correct) {
    const float vals[] = {1000, -1000, 0, /**/ 1000, 1000, 999, /**/ -1000, -1000, -1000};
    nb_tensor *x = t_tensor_of("x", 2, (int[]){3, 3}, vals), *w;
    nb_graph *g = nb_graph_new();
    nb_node *xn = nb_param(g, x);
    nb_node *y = nb_softmax(g, xn), *ly = nb_log_softmax(g, xn);
    nb_node *loss = nb_add(g, t_weighted_sum(g, y, &w, 3), nb_sum(g, ly));
    nb_graph_check_finite(g, true); /* any inf or NaN, forward or backward, is an error */
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    const double e1 = exp(-1.0);
    const float want[] = {1, 0, 0,
                          (float)(1 / (2 + e1)), (float)(1 / (2 + e1)), (float)(e1 / (2 + e1)),
                          1.0f / 3, 1.0f / 3, 1.0f / 3};
    const float want_log[] = {0, -2000, -1000,
                              (float)-log(2 + e1), (float)-log(2 + e1), (float)(-1 - log(2 + e1)),
                              (float)-log(3.0), (float)-log(3.0), (float)-log(3.0)};
    nb_assert_near(nb_node_value(y), want, 9, 1e-6, 1e-5);
    nb_assert_near(nb_node_value(ly), want_log, 9, 1e-6, 1e-5);
    for (int i = 0; i < 9; i++) cr_assert(isfinite(x->grad[i]));
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
}

Test(softmax, scalar_input_is_rejected_naming_the_op) {
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_softmax(g, nb_scalar(g, 1.0f));
    cr_assert_null(y);
    cr_assert_eq(nb_graph_status(g), NB_ERROR);
    cr_assert(strstr(nb_graph_error(g), "softmax:"), "%s", nb_graph_error(g));
    nb_graph_free(g);

    g = nb_graph_new();
    cr_assert_null(nb_log_softmax(g, nb_scalar(g, 1.0f)));
    cr_assert(strstr(nb_graph_error(g), "log_softmax:"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}

Test(softmax, null_input_is_an_error_not_a_crash) {
    nb_graph *g = nb_graph_new();
    cr_assert_null(nb_softmax(g, NULL));
    cr_assert_eq(nb_graph_status(g), NB_ERROR);
    cr_assert(strstr(nb_graph_error(g), "softmax"), "%s", nb_graph_error(g));
    /* a graph in error stays quiet */
    cr_assert_null(nb_log_softmax(g, NULL));
    nb_graph_free(g);
}

/* Built for batch 8, fed 5: values and the gradient of a bias shared by the
 * rows follow the 5 rows. loss = sum(softmax(x + bias) * w) with w [F]. */
static void check_batch_change(unary_fn f, bool log_out) {
    enum { B = 8, FED = 5, F = 6 };
    float x[B * F];
    for (int i = 0; i < B * F; i++) x[i] = (float)((i * 37) % 23) / 7.0f - 1.5f;
    nb_tensor *bias = t_tensor("bias", 1, (int[]){F}, -0.5f, 0.5f, 4);
    nb_tensor *w = t_tensor("w", 1, (int[]){F}, -1, 1, 5);
    w->trainable = false;
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){B, F});
    nb_node *y = f(g, nb_add(g, in, nb_param(g, bias)));
    nb_node *loss = nb_sum(g, nb_mul(g, y, nb_constant(g, w)));
    nb_feed(g, in, x, FED);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    nb_shape s = nb_node_shape(y);
    cr_assert(s.rank == 2 && s.dim[0] == FED && s.dim[1] == F);

    float z[FED * F], ref[FED * F];
    for (int r = 0; r < FED; r++)
        for (int j = 0; j < F; j++) z[r * F + j] = x[r * F + j] + bias->data[j];
    reference(z, FED, F, log_out, ref);
    nb_assert_near(nb_node_value(y), ref, FED * F, 1e-6, 1e-5);

    /* d loss / d z[r,j] with dy = w, summed over the fed rows for the bias */
    double gb[F] = {0};
    for (int r = 0; r < FED; r++) {
        double p[F], sw = 0.0, sp = 0.0;
        for (int j = 0; j < F; j++) {
            p[j] = log_out ? exp((double)ref[r * F + j]) : (double)ref[r * F + j];
            sw += w->data[j];
            sp += (double)w->data[j] * p[j];
        }
        for (int j = 0; j < F; j++)
            gb[j] += log_out ? w->data[j] - p[j] * sw : p[j] * (w->data[j] - sp);
    }
    float gbf[F];
    for (int j = 0; j < F; j++) gbf[j] = (float)gb[j];
    nb_assert_near(bias->grad, gbf, F, 1e-5, 1e-4);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(bias);
    nb_tensor_free(w);
}

Test(softmax, softmax_batch_follows_the_feed) { check_batch_change(nb_softmax, false); }
Test(softmax, log_softmax_batch_follows_the_feed) { check_batch_change(nb_log_softmax, true); }

/* Large enough to take the parallel path: the same bits with 1 and 4 threads. */
static void run_large(unary_fn f, int threads, float *y_out, float *g_out, size_t n) {
    nb_set_num_threads(threads);
    nb_tensor *x = t_tensor("x", 2, (int[]){512, 96}, -5, 5, 31), *w;
    nb_graph *g = nb_graph_new();
    nb_node *y = f(g, nb_param(g, x));
    nb_node *loss = t_weighted_sum(g, y, &w, 32);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    memcpy(y_out, nb_node_value(y), n * sizeof(float));
    memcpy(g_out, x->grad, n * sizeof(float));
    nb_graph_free(g);
    nb_tensor_free(x);
    nb_tensor_free(w);
}

static void check_thread_independence(unary_fn f, bool log_out) {
    const size_t n = 512 * 96;
    float *y1 = malloc(n * sizeof(float)), *g1 = malloc(n * sizeof(float));
    float *y4 = malloc(n * sizeof(float)), *g4 = malloc(n * sizeof(float));
    float *ref = malloc(n * sizeof(float));
    int before = nb_get_num_threads();
    run_large(f, 1, y1, g1, n);
    run_large(f, 4, y4, g4, n);
    nb_set_num_threads(before);
    cr_assert(memcmp(y1, y4, n * sizeof(float)) == 0, "values depend on the thread count");
    cr_assert(memcmp(g1, g4, n * sizeof(float)) == 0, "gradients depend on the thread count");
    nb_tensor *x = t_tensor("x", 2, (int[]){512, 96}, -5, 5, 31);
    reference(x->data, 512, 96, log_out, ref);
    nb_assert_near(y4, ref, n, 1e-6, 1e-5);
    nb_tensor_free(x);
    free(y1), free(g1), free(y4), free(g4), free(ref);
}

Test(softmax, softmax_large_input_is_thread_independent) { check_thread_independence(nb_softmax, false); }
Test(softmax, log_softmax_large_input_is_thread_independent) {
    check_thread_independence(nb_log_softmax, true);
}

/* Rows of 37 (two vectors and a tail) and 300, logits in [-30, 30]:
 * within 4e-6 relative of the double reference (or 1e-30 absolute, for
 * probabilities that underflow), softmax and log-softmax. Most of that is
 * the float subtraction x - max, which rounds by up to |x - max|·2^-24
 * (3.6e-6 at 60) before exp turns it into relative error. Log-softmax
 * also within 1e-6 absolute: (x - max) - log(sum) cancels near 0. */
static void check_accuracy(void) {
    const int lens[] = {37, 300};
    for (int l = 0; l < 2; l++) {
        const int len = lens[l], rows = 64;
        nb_tensor *x = t_tensor("x", 2, (int[]){rows, len}, -30, 30, 40 + (uint64_t)l);
        float *ref = malloc(x->size * sizeof *ref);
        for (int lg = 0; lg < 2; lg++) {
            nb_graph *g = nb_graph_new();
            nb_node *y = (lg ? nb_log_softmax : nb_softmax)(g, nb_param(g, x));
            cr_assert(nb_forward(g, NB_INFERENCE) == NB_OK);
            reference(x->data, (size_t)rows, (size_t)len, lg, ref);
            cr_log_info("len %d, %s", len, lg ? "log_softmax" : "softmax");
            nb_assert_near(nb_node_value(y), ref, x->size, lg ? 1e-6 : 1e-30, 4e-6);
            nb_graph_free(g);
        }
        free(ref);
        nb_tensor_free(x);
    }
}

Test(softmax, values_are_within_4e6_relative_of_double) { check_accuracy(); }

/* The portable kernels, which CPUs without AVX-512 run, through the same
 * checks (each test is its own process, so the switch lasts for one). */
#include "ops/simd512.h"
#ifdef NB_HAVE_V512
Test(softmax, portable_kernels_match_the_reference_too) {
    nb__v512_disabled = true;
    check_accuracy();
    check_values_and_gradient(nb_softmax, false, 2, (int[]){4, 5});
    check_values_and_gradient(nb_log_softmax, true, 3, (int[]){2, 3, 4});
    check_thread_independence(nb_softmax, false);
    check_thread_independence(nb_log_softmax, true);
}
#endif
