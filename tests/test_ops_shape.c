/* tests/test_ops_shape.c — reshape, flatten, concat and slice. */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "nabla/testing.h"

static void assert_shape(const nb_node *n, int rank, const int *dims) {
    nb_shape s = nb_node_shape(n);
    cr_assert_eq(s.rank, rank, "rank %d, expected %d", s.rank, rank);
    for (int d = 0; d < rank; d++)
        cr_assert_eq(s.dim[d], dims[d], "dim %d is %d, expected %d", d, s.dim[d], dims[d]);
}

static void assert_error(nb_graph *g, const nb_node *n, const char *const *parts, int n_parts) {
    cr_assert_null(n);
    cr_assert_eq(nb_graph_status(g), NB_ERROR);
    for (int i = 0; i < n_parts; i++)
        cr_assert(strstr(nb_graph_error(g), parts[i]), "message '%s' lacks '%s'",
                  nb_graph_error(g), parts[i]);
}
#define ASSERT_ERROR(g, n, ...) \
    assert_error((g), (n), (const char *const[]){__VA_ARGS__}, \
                 (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)))

/* ---- reshape / flatten ---- */

Test(shape, reshape_is_a_view_with_inferred_dim) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor("x", 2, (int[]){4, 6}, -1, 1, 1);
    nb_node *x = nb_param(g, t);
    nb_node *r = nb_reshape(g, x, 3, (int[]){2, -1, 3});
    nb_node *s = nb_scale(g, r, 2.0f);
    t_ok(g);
    assert_shape(r, 3, (int[]){2, 4, 3});
    cr_assert_str_eq(nb_node_op(r), "reshape");
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_node_value(r), nb_node_value(x), "reshape copied its input");
    /* row-major order is kept: element i of the view is element i of x */
    float expect[24];
    for (int i = 0; i < 24; i++) expect[i] = 2.0f * t->data[i];
    nb_assert_near(nb_node_value(s), expect, 24, 0, 0);
    nb_graph_free(g);
    nb_tensor_free(t);
}

Test(shape, reshape_with_leading_minus_one_follows_the_batch) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){8, 6});
    nb_node *r = nb_reshape(g, x, 3, (int[]){-1, 3, 2});
    nb_node *f = nb_flatten(g, r);
    nb_node *s = nb_scale(g, f, -1.0f);
    t_ok(g);
    assert_shape(r, 3, (int[]){8, 3, 2});
    assert_shape(f, 2, (int[]){8, 6});
    float data[8 * 6];
    for (int i = 0; i < 48; i++) data[i] = 0.25f * (float)i - 3.0f;
    cr_assert_eq(nb_feed(g, x, data, 8), NB_OK);
    cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_OK);
    cr_assert_eq(nb_feed(g, x, data, 5), NB_OK);
    cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_OK, "%s", nb_graph_error(g));
    assert_shape(r, 3, (int[]){5, 3, 2});
    assert_shape(f, 2, (int[]){5, 6});
    cr_assert_eq(nb_node_size(s), 30);
    cr_assert_eq(nb_node_value(r), data);
    cr_assert_eq(nb_node_value(f), data);
    float expect[30];
    for (int i = 0; i < 30; i++) expect[i] = -data[i];
    nb_assert_near(nb_node_value(s), expect, 30, 0, 0);
    nb_graph_free(g);
}

Test(shape, reshape_without_batch_dim_fails_on_batch_change) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){8, 6});
    nb_node *r = nb_reshape(g, x, 1, (int[]){48});
    t_ok(g);
    (void)r;
    float data[48] = {0};
    nb_feed(g, x, data, 5);
    cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_ERROR);
    cr_assert(strstr(nb_graph_error(g), "reshape"), "%s", nb_graph_error(g));
    cr_assert(strstr(nb_graph_error(g), "[5,6]"), "%s", nb_graph_error(g));
    cr_assert(strstr(nb_graph_error(g), "[48]"), "%s", nb_graph_error(g));
    nb_graph_free(g);
}

Test(shape, flatten_shapes) {
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", 4, (int[]){3, 2, 4, 5});
    nb_node *b = nb_input(g, "b", 1, (int[]){3});
    nb_node *c = nb_input(g, "c", 2, (int[]){3, 7});
    nb_node *fa = nb_flatten(g, a), *fb = nb_flatten(g, b), *fc = nb_flatten(g, c);
    t_ok(g);
    assert_shape(fa, 2, (int[]){3, 40});
    assert_shape(fb, 2, (int[]){3, 1}); /* Keras: (batch,) -> (batch, 1) */
    assert_shape(fc, 2, (int[]){3, 7});
    cr_assert_str_eq(nb_node_op(fa), "reshape");
    nb_graph_free(g);
}

Test(shape, reshape_gradcheck) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor("x", 2, (int[]){4, 6}, -1, 1, 2), *w;
    nb_node *r = nb_reshape(g, nb_param(g, t), 3, (int[]){-1, 2, 3});
    nb_node *loss = t_weighted_sum(g, r, &w, 3);
    t_ok(g);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    nb_assert_gradcheck(g, loss, 1e-2);
    /* the loss is sum(w·x) through the view: dL/dx = w exactly */
    cr_assert_eq(nb_backward(g, loss), NB_OK);
    nb_assert_near(t->grad, w->data, 24, 0, 0);
    nb_graph_free(g);
    nb_tensor_free(t);
    nb_tensor_free(w);
}

/* The view shares its input's gradient buffer: gradients from the view and
 * from the input's other consumers must add up, also when the input is an op
 * with its own buffer. */
Test(shape, reshape_gradcheck_fan_out_of_op) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor("x", 2, (int[]){3, 4}, -1, 1, 4), *w1, *w2;
    nb_node *h = nb_scale(g, nb_param(g, t), 1.5f);
    nb_node *l1 = t_weighted_sum(g, h, &w1, 5);
    nb_node *f = nb_flatten(g, nb_reshape(g, h, 3, (int[]){3, 2, 2}));
    nb_node *l2 = t_weighted_sum(g, nb_mul(g, f, f), &w2, 6);
    nb_node *loss = nb_add(g, l1, l2);
    t_ok(g);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(t);
    nb_tensor_free(w1);
    nb_tensor_free(w2);
}

/* A view may be the loss itself: its gradient is its input's. */
Test(shape, reshape_as_loss) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor("x", 1, (int[]){5}, -1, 1, 7);
    nb_node *loss = nb_reshape(g, nb_sum(g, nb_param(g, t)), 2, (int[]){1, 1});
    t_ok(g);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_backward(g, loss), NB_OK, "%s", nb_graph_error(g));
    float ones[5] = {1, 1, 1, 1, 1};
    nb_assert_near(t->grad, ones, 5, 0, 0);
    nb_graph_free(g);
    nb_tensor_free(t);
}

Test(shape, reshape_count_mismatch_names_both_shapes) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 6});
    ASSERT_ERROR(g, nb_reshape(g, x, 2, (int[]){5, 5}), "reshape", "[4,6]", "[5,5]");
    nb_graph_free(g);
    g = nb_graph_new();
    x = nb_input(g, "x", 2, (int[]){4, 6});
    ASSERT_ERROR(g, nb_reshape(g, x, 2, (int[]){-1, 5}), "reshape", "[4,6]", "[-1,5]");
    nb_graph_free(g);
}

Test(shape, reshape_bad_dims) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 6});
    ASSERT_ERROR(g, nb_reshape(g, x, 3, (int[]){-1, 2, -1}), "reshape", "-1", "[-1,2,-1]");
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 2, (int[]){4, 6});
    ASSERT_ERROR(g, nb_reshape(g, x, 2, (int[]){0, 24}), "reshape", "[0,24]");
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 2, (int[]){4, 6});
    ASSERT_ERROR(g, nb_reshape(g, x, 2, (int[]){-2, -12}), "reshape");
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 2, (int[]){4, 6});
    ASSERT_ERROR(g, nb_reshape(g, x, 5, (int[]){1, 1, 4, 6, 1}), "reshape", "rank 5");
    nb_graph_free(g);

    g = nb_graph_new();
    x = nb_input(g, "x", 2, (int[]){4, 6});
    ASSERT_ERROR(g, nb_reshape(g, x, 2, NULL), "reshape");
    nb_graph_free(g);

    g = nb_graph_new();
    ASSERT_ERROR(g, nb_reshape(g, NULL, 1, (int[]){-1}), "reshape");
    nb_graph_free(g);
}

Test(shape, flatten_bad_args) {
    nb_graph *g = nb_graph_new();
    ASSERT_ERROR(g, nb_flatten(g, NULL), "flatten");
    nb_graph_free(g);

    g = nb_graph_new();
    ASSERT_ERROR(g, nb_flatten(g, nb_scalar(g, 1.0f)), "flatten", "[]");
    nb_graph_free(g);

    g = nb_graph_new();
    nb_graph *other = nb_graph_new();
    nb_node *y = nb_input(other, "y", 2, (int[]){2, 2});
    ASSERT_ERROR(g, nb_flatten(g, y), "flatten", "another graph");
    nb_graph_free(g);
    nb_graph_free(other);
}

Test(shape, constructors_do_nothing_on_a_graph_in_error) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 6});
    cr_assert_null(nb_reshape(g, x, 2, (int[]){5, 5}));
    char first[256];
    strcpy(first, nb_graph_error(g));
    int count = nb_graph_node_count(g);
    cr_assert_null(nb_reshape(g, x, 2, (int[]){-1, -1}));
    cr_assert_null(nb_flatten(g, x));
    cr_assert_null(nb_concat(g, 1, &x));
    cr_assert_null(nb_slice(g, x, 0, 1));
    cr_assert_str_eq(nb_graph_error(g), first);
    cr_assert_eq(nb_graph_node_count(g), count);
    nb_graph_free(g);
}

/* ---- concat ---- */

Test(shape, concat_forward_matches_reference_and_follows_batch) {
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", 2, (int[]){8, 2});
    nb_node *b = nb_input(g, "b", 2, (int[]){8, 3});
    nb_node *c = nb_input(g, "c", 2, (int[]){8, 1});
    nb_node *y = nb_concat(g, 3, (nb_node *[]){a, b, c});
    t_ok(g);
    cr_assert_str_eq(nb_node_op(y), "concat");
    assert_shape(y, 2, (int[]){8, 6});
    float da[16], db[24], dc[8];
    for (int i = 0; i < 16; i++) da[i] = (float)i;
    for (int i = 0; i < 24; i++) db[i] = 100.0f + (float)i;
    for (int i = 0; i < 8; i++) dc[i] = -1.0f - (float)i;
    for (int batch = 8; batch >= 5; batch -= 3) {
        nb_feed(g, a, da, batch);
        nb_feed(g, b, db, batch);
        nb_feed(g, c, dc, batch);
        cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_OK, "%s", nb_graph_error(g));
        assert_shape(y, 2, (int[]){batch, 6});
        float expect[48];
        for (int r = 0; r < batch; r++) {
            expect[r * 6 + 0] = da[r * 2 + 0];
            expect[r * 6 + 1] = da[r * 2 + 1];
            for (int j = 0; j < 3; j++) expect[r * 6 + 2 + j] = db[r * 3 + j];
            expect[r * 6 + 5] = dc[r];
        }
        nb_assert_near(nb_node_value(y), expect, (size_t)batch * 6, 0, 0);
    }
    nb_graph_free(g);
}

Test(shape, concat_rank3_and_single_input) {
    nb_graph *g = nb_graph_new();
    nb_tensor *ta = t_tensor("a", 3, (int[]){2, 3, 1}, -1, 1, 8);
    nb_tensor *tb = t_tensor("b", 3, (int[]){2, 3, 2}, -1, 1, 9);
    nb_node *a = nb_param(g, ta), *b = nb_param(g, tb);
    nb_node *y = nb_concat(g, 2, (nb_node *[]){b, a});
    nb_node *one = nb_concat(g, 1, &a);
    t_ok(g);
    assert_shape(y, 3, (int[]){2, 3, 3});
    assert_shape(one, 3, (int[]){2, 3, 1});
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    float expect[18];
    for (int r = 0; r < 6; r++) {
        expect[r * 3 + 0] = tb->data[r * 2 + 0];
        expect[r * 3 + 1] = tb->data[r * 2 + 1];
        expect[r * 3 + 2] = ta->data[r];
    }
    nb_assert_near(nb_node_value(y), expect, 18, 0, 0);
    nb_assert_near(nb_node_value(one), ta->data, 6, 0, 0);
    cr_assert_neq(nb_node_value(one), ta->data, "concat of one input is a copy, not a view");
    nb_graph_free(g);
    nb_tensor_free(ta);
    nb_tensor_free(tb);
}

Test(shape, concat_gradcheck_three_widths) {
    nb_graph *g = nb_graph_new();
    nb_tensor *ta = t_tensor("a", 2, (int[]){4, 2}, -1, 1, 10);
    nb_tensor *tb = t_tensor("b", 2, (int[]){4, 3}, -1, 1, 11);
    nb_tensor *tc = t_tensor("c", 2, (int[]){4, 1}, -1, 1, 12), *w;
    nb_node *y = nb_concat(g, 3, (nb_node *[]){nb_param(g, ta), nb_param(g, tb), nb_param(g, tc)});
    nb_node *loss = t_weighted_sum(g, nb_mul(g, y, y), &w, 13);
    t_ok(g);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(ta);
    nb_tensor_free(tb);
    nb_tensor_free(tc);
    nb_tensor_free(w);
}

/* The same node twice, and a frozen input in between that gets nothing. */
Test(shape, concat_repeated_input_and_frozen_input) {
    nb_graph *g = nb_graph_new();
    nb_tensor *ta = t_tensor("a", 2, (int[]){3, 2}, -1, 1, 14);
    nb_tensor *tf = t_tensor("frozen", 2, (int[]){3, 4}, -1, 1, 15), *w;
    tf->trainable = false;
    nb_node *a = nb_param(g, ta);
    nb_node *y = nb_concat(g, 3, (nb_node *[]){a, nb_param(g, tf), a});
    nb_node *loss = t_weighted_sum(g, y, &w, 16);
    t_ok(g);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_backward(g, loss), NB_OK);
    cr_assert_null(tf->grad);
    float expect[6];
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 2; j++) expect[r * 2 + j] = w->data[r * 8 + j] + w->data[r * 8 + 6 + j];
    nb_assert_near(ta->grad, expect, 6, 1e-6, 1e-6);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(ta);
    nb_tensor_free(tf);
    nb_tensor_free(w);
}

Test(shape, concat_bad_args) {
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", 2, (int[]){4, 2});
    nb_node *b = nb_input(g, "b", 2, (int[]){3, 2});
    ASSERT_ERROR(g, nb_concat(g, 2, (nb_node *[]){a, b}), "concat", "[4,2]", "[3,2]");
    nb_graph_free(g);

    g = nb_graph_new();
    a = nb_input(g, "a", 2, (int[]){4, 2});
    b = nb_input(g, "b", 3, (int[]){4, 1, 2});
    ASSERT_ERROR(g, nb_concat(g, 2, (nb_node *[]){a, b}), "concat", "[4,2]", "[4,1,2]");
    nb_graph_free(g);

    g = nb_graph_new();
    a = nb_input(g, "a", 2, (int[]){4, 2});
    ASSERT_ERROR(g, nb_concat(g, 2, (nb_node *[]){a, nb_scalar(g, 1.0f)}), "concat", "[]");
    nb_graph_free(g);

    g = nb_graph_new();
    ASSERT_ERROR(g, nb_concat(g, 0, (nb_node *[]){NULL}), "concat");
    nb_graph_free(g);

    g = nb_graph_new();
    ASSERT_ERROR(g, nb_concat(g, 2, NULL), "concat");
    nb_graph_free(g);

    g = nb_graph_new();
    a = nb_input(g, "a", 2, (int[]){4, 2});
    ASSERT_ERROR(g, nb_concat(g, 2, (nb_node *[]){a, NULL}), "concat", "NULL");
    nb_graph_free(g);
}

/* ---- slice ---- */

Test(shape, slice_forward_matches_reference_and_follows_batch) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){8, 7});
    nb_node *y = nb_slice(g, x, 2, 4);
    nb_node *last = nb_slice(g, x, 6, 1);
    t_ok(g);
    cr_assert_str_eq(nb_node_op(y), "slice");
    assert_shape(y, 2, (int[]){8, 4});
    float data[56];
    for (int i = 0; i < 56; i++) data[i] = 0.5f * (float)i - 7.0f;
    for (int batch = 8; batch >= 5; batch -= 3) {
        nb_feed(g, x, data, batch);
        cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_OK, "%s", nb_graph_error(g));
        assert_shape(y, 2, (int[]){batch, 4});
        float expect[32], expect_last[8];
        for (int r = 0; r < batch; r++) {
            for (int j = 0; j < 4; j++) expect[r * 4 + j] = data[r * 7 + 2 + j];
            expect_last[r] = data[r * 7 + 6];
        }
        nb_assert_near(nb_node_value(y), expect, (size_t)batch * 4, 0, 0);
        nb_assert_near(nb_node_value(last), expect_last, (size_t)batch, 0, 0);
    }
    nb_graph_free(g);
}

Test(shape, slice_gradient_zero_outside_and_correct_inside) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor("x", 3, (int[]){2, 3, 6}, -1, 1, 17), *w;
    nb_node *y = nb_slice(g, nb_param(g, t), 1, 3);
    nb_node *loss = t_weighted_sum(g, y, &w, 18);
    t_ok(g);
    nb_shape s = nb_node_shape(y);
    cr_assert_eq(s.rank, 3);
    cr_assert_eq(s.dim[2], 3);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_backward(g, loss), NB_OK);
    for (int r = 0; r < 6; r++)
        for (int j = 0; j < 6; j++) {
            float got = t->grad[r * 6 + j];
            float want = j >= 1 && j < 4 ? w->data[r * 3 + j - 1] : 0.0f;
            cr_assert_eq(got, want, "row %d col %d: grad %g, expected %g", r, j, got, want);
        }
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(t);
    nb_tensor_free(w);
}

/* Two slices of one tensor put back together: the identity, gradient w. */
Test(shape, slice_then_concat_gradcheck) {
    nb_graph *g = nb_graph_new();
    nb_tensor *t = t_tensor("x", 2, (int[]){4, 5}, -1, 1, 19), *w;
    nb_node *x = nb_param(g, t);
    nb_node *y = nb_concat(g, 2, (nb_node *[]){nb_slice(g, x, 3, 2), nb_slice(g, x, 0, 3)});
    nb_node *loss = t_weighted_sum(g, nb_mul(g, y, y), &w, 20);
    t_ok(g);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(t);
    nb_tensor_free(w);
}

Test(shape, slice_bad_args) {
    static const int cases[][2] = {{4, 3}, {-1, 2}, {0, 0}, {2, -1}, {7, 1}, {0, 7}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_graph *g = nb_graph_new();
        nb_node *x = nb_input(g, "x", 2, (int[]){4, 6});
        ASSERT_ERROR(g, nb_slice(g, x, cases[i][0], cases[i][1]), "slice", "[4,6]");
        nb_graph_free(g);
    }
    nb_graph *g = nb_graph_new();
    ASSERT_ERROR(g, nb_slice(g, nb_scalar(g, 2.0f), 0, 1), "slice", "[]");
    nb_graph_free(g);

    g = nb_graph_new();
    ASSERT_ERROR(g, nb_slice(g, NULL, 0, 1), "slice");
    nb_graph_free(g);

    /* start + len overflowing an int is still out of range */
    g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){4, 6});
    ASSERT_ERROR(g, nb_slice(g, x, 2, 2147483647), "slice");
    nb_graph_free(g);
}

/* Big enough for the parallel row loops (NB_PAR_MIN elements). */
Test(shape, large_concat_and_slice) {
    enum { B = 8192, FA = 3, FB = 5 };
    nb_graph *g = nb_graph_new();
    nb_tensor *ta = t_tensor("a", 2, (int[]){B, FA}, -1, 1, 21);
    nb_tensor *tb = t_tensor("b", 2, (int[]){B, FB}, -1, 1, 22), *w;
    nb_node *y = nb_concat(g, 2, (nb_node *[]){nb_param(g, ta), nb_param(g, tb)});
    nb_node *s = nb_slice(g, y, 2, 4); /* last column of a, first three of b */
    nb_node *loss = t_weighted_sum(g, s, &w, 23);
    t_ok(g);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_backward(g, loss), NB_OK);
    const float *sv = nb_node_value(s);
    for (int r = 0; r < B; r++) {
        const float want[4] = {ta->data[r * FA + 2], tb->data[r * FB], tb->data[r * FB + 1], tb->data[r * FB + 2]};
        for (int j = 0; j < 4; j++) cr_assert_eq(sv[r * 4 + j], want[j], "row %d col %d", r, j);
        const float *wr = w->data + r * 4;
        cr_assert_eq(ta->grad[r * FA + 0], 0.0f);
        cr_assert_eq(ta->grad[r * FA + 1], 0.0f);
        cr_assert_eq(ta->grad[r * FA + 2], wr[0]);
        for (int j = 0; j < 3; j++) cr_assert_eq(tb->grad[r * FB + j], wr[1 + j]);
        cr_assert_eq(tb->grad[r * FB + 3], 0.0f);
        cr_assert_eq(tb->grad[r * FB + 4], 0.0f);
    }
    nb_graph_free(g);
    nb_tensor_free(ta);
    nb_tensor_free(tb);
    nb_tensor_free(w);
}
