/* matmul: values against a naive product in double, every transpose
 * combination's gradients, shape errors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

/* ref = op(a)·op(b) in double; a is [ra,ca], b is [rb,cb] as stored. */
static void naive(const float *a, int ra, int ca, bool ta, const float *b, int rb, int cb, bool tb,
                  float *ref) {
    int m = ta ? ca : ra, k = ta ? ra : ca, n = tb ? rb : cb;
    (void)rb;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int l = 0; l < k; l++) {
                double av = ta ? a[l * ca + i] : a[i * ca + l];
                double bv = tb ? b[j * cb + l] : b[l * cb + j];
                acc += av * bv;
            }
            ref[i * n + j] = (float)acc;
        }
}

static void check_product(bool ta, bool tb) {
    const int m = 5, k = 7, n = 3;
    int adims[2] = {ta ? k : m, ta ? m : k}, bdims[2] = {tb ? n : k, tb ? k : n};
    nb_tensor *a = t_tensor("a", 2, adims, -1, 1, 1), *b = t_tensor("b", 2, bdims, -1, 1, 2), *w;
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_matmul_t(g, nb_param(g, a), nb_param(g, b), ta, tb);
    nb_node *loss = t_weighted_sum(g, y, &w, 3);
    nb_forward(g, NB_TRAINING);
    t_ok(g);
    nb_shape s = nb_node_shape(y);
    cr_assert(s.rank == 2 && s.dim[0] == m && s.dim[1] == n);
    float ref[5 * 3];
    naive(a->data, adims[0], adims[1], ta, b->data, bdims[0], bdims[1], tb, ref);
    nb_assert_near(nb_node_value(y), ref, (size_t)(m * n), 1e-5, 1e-5);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_tensor_free(w);
}

Test(matmul, plain_product_and_gradients) { check_product(false, false); }
Test(matmul, transposed_a) { check_product(true, false); }
Test(matmul, transposed_b) { check_product(false, true); }
Test(matmul, both_transposed) { check_product(true, true); }

Test(matmul, batch_follows_the_feed) {
    nb_tensor *w = t_tensor("w", 2, (int[]){4, 3}, -1, 1, 5);
    float x[8 * 4];
    for (int i = 0; i < 32; i++) x[i] = (float)i / 10.0f;
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){8, 4});
    nb_node *y = nb_matmul(g, in, nb_param(g, w));
    nb_feed(g, in, x, 5);
    nb_forward(g, NB_INFERENCE);
    t_ok(g);
    nb_shape s = nb_node_shape(y);
    cr_assert_eq(s.dim[0], 5);
    float ref[5 * 3];
    naive(x, 5, 4, false, w->data, 4, 3, false, ref);
    nb_assert_near(nb_node_value(y), ref, 15, 1e-5, 1e-5);
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(matmul, inner_dimension_mismatch_names_the_shapes) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){32, 784});
    nb_tensor *w = nb_tensor_new(2, (int[]){300, 100});
    nb_node *y = nb_matmul(g, x, nb_param(g, w));
    cr_assert_null(y);
    cr_assert_eq(nb_graph_status(g), NB_ERROR);
    cr_assert_str_eq(nb_graph_error(g), "matmul: inner dimensions differ: [32,784] x [300,100]");
    nb_graph_free(g);
    nb_tensor_free(w);
}

Test(matmul, rejects_non_matrices) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 1, (int[]){4});
    nb_node *y = nb_input(g, "y", 2, (int[]){4, 4});
    cr_assert_null(nb_matmul(g, x, y));
    cr_assert(strstr(nb_graph_error(g), "matmul: needs two matrices, got [4] x [4,4]"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}

/* Shapes that span several micro-tiles, and K and M beyond one cache block
 * (KC and MC are 384 and 480 with the skx kernels), on 1 and 2 threads;
 * gradients against the naive products of the backward formulas. */
static void check_large(bool ta, bool tb, int threads) {
    nb_set_num_threads(threads);
    const int m = 517, k = 801, n = 45;
    int adims[2] = {ta ? k : m, ta ? m : k}, bdims[2] = {tb ? n : k, tb ? k : n};
    nb_tensor *a = t_tensor("a", 2, adims, -1, 1, 7), *b = t_tensor("b", 2, bdims, -1, 1, 8);
    nb_tensor *w = t_tensor("w", 2, (int[]){m, n}, -1, 1, 9);
    w->trainable = false;
    nb_graph *g = nb_graph_new();
    nb_node *y = nb_matmul_t(g, nb_param(g, a), nb_param(g, b), ta, tb);
    nb_node *loss = nb_sum(g, nb_mul(g, y, nb_constant(g, w))); /* dL/dy = w */
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    float *ref = malloc(sizeof(float) * (size_t)m * n);
    naive(a->data, adims[0], adims[1], ta, b->data, bdims[0], bdims[1], tb, ref);
    nb_assert_near(nb_node_value(y), ref, (size_t)m * n, 1e-4, 1e-4);
    free(ref);
    /* dA' = W·B'^T: element (i,l) = sum_j w[i][j]·B'(l,j), stored as A is */
    float *da = malloc(sizeof(float) * a->size), *db = malloc(sizeof(float) * b->size);
    for (int i = 0; i < m; i++)
        for (int l = 0; l < k; l++) {
            double acc = 0;
            for (int j = 0; j < n; j++)
                acc += (double)w->data[i * n + j] * (tb ? b->data[j * k + l] : b->data[l * n + j]);
            da[ta ? l * m + i : i * k + l] = (float)acc;
        }
    /* dB' = A'^T·W: element (l,j) = sum_i A'(i,l)·w[i][j] */
    for (int l = 0; l < k; l++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int i = 0; i < m; i++)
                acc += (double)(ta ? a->data[l * m + i] : a->data[i * k + l]) * w->data[i * n + j];
            db[tb ? j * k + l : l * n + j] = (float)acc;
        }
    nb_assert_near(a->grad, da, a->size, 1e-4, 1e-4);
    nb_assert_near(b->grad, db, b->size, 1e-3, 1e-4);
    free(da), free(db);
    nb_graph_free(g);
    nb_tensor_free(a), nb_tensor_free(b), nb_tensor_free(w);
}

Test(matmul, large_products_and_gradients_on_one_thread) {
    check_large(false, false, 1);
    check_large(true, true, 1);
}

Test(matmul, large_products_and_gradients_on_two_threads) {
    check_large(false, true, 2);
    check_large(true, false, 2);
}

Test(matmul, results_do_not_depend_on_the_thread_count) {
    /* each element of C is one micro-kernel call in a fixed order */
    nb_tensor *a = t_tensor("a", 2, (int[]){256, 784}, -1, 1, 10), *b = t_tensor("b", 2, (int[]){784, 300}, -1, 1, 11);
    float *out[2];
    for (int t = 0; t < 2; t++) {
        nb_set_num_threads(t + 1);
        nb_graph *g = nb_graph_new();
        nb_node *y = nb_matmul(g, nb_param(g, a), nb_param(g, b));
        nb_forward(g, NB_INFERENCE);
        t_ok(g);
        out[t] = malloc(sizeof(float) * 256 * 300);
        memcpy(out[t], nb_node_value(y), sizeof(float) * 256 * 300);
        nb_graph_free(g);
    }
    cr_assert(memcmp(out[0], out[1], sizeof(float) * 256 * 300) == 0);
    free(out[0]), free(out[1]);
    nb_tensor_free(a), nb_tensor_free(b);
}
