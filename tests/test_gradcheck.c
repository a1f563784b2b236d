/* nb_gradcheck's options and verdict (graph/gradcheck.c, nabla/testing.h):
 * a deliberately wrong custom op fails with a message naming the element
 * by its index along each dimension; the tolerance decides; the sampled
 * elements are as many as asked, spread evenly or drawn by a seed, the same
 * for the same seed; the old assertion still works. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "nabla/custom.h"
#include "nabla/testing.h"

/* y = x² with a backward that is right except at one flat index (user
 * points at it), where it is 3x instead of 2x. */
static int same_shape(int n, const nb_shape *in, nb_shape *out, void *u, char *err, size_t len) {
    (void)n, (void)u, (void)err, (void)len;
    *out = in[0];
    return 0;
}
static void square_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys, void *u) {
    (void)n, (void)s, (void)u;
    for (size_t i = 0; i < nb_shape_size(ys); i++) y[i] = in[0][i] * in[0][i];
}
static void square_bwd(int n, const float *const *in, const nb_shape *s, const float *y, const float *dy,
                       const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)s, (void)y;
    const size_t bad = *(const size_t *)u;
    if (!din[0]) return;
    for (size_t i = 0; i < nb_shape_size(ys); i++) din[0][i] += (i == bad ? 3.0f : 2.0f) * in[0][i] * dy[i];
}
static const nb_custom_op wrong_at_one = {"square_wrong_at_one", same_shape, square_fwd, square_bwd};

typedef struct fixture {
    nb_graph *g;
    nb_tensor *w;
    nb_node *loss;
    size_t bad;
} fixture;

/* loss = sum(op(w)) for w [rank dims] in [0.5, 1.5]; bad = (size_t)-1 makes
 * the op right everywhere. */
static void setup(fixture *f, int rank, const int *dims, size_t bad) {
    f->bad = bad;
    f->w = t_tensor("dense/kernel", rank, dims, 0.5f, 1.5f, 3);
    f->g = nb_graph_new();
    nb_node *p = nb_param(f->g, f->w);
    f->loss = nb_sum(f->g, nb_custom(f->g, &wrong_at_one, 1, &p, &f->bad));
    t_ok(f->g);
}
static void teardown(fixture *f) {
    nb_graph_free(f->g);
    nb_tensor_free(f->w);
}

Test(gradcheck, a_wrong_gradient_fails_naming_the_element_along_each_dimension) {
    fixture f;
    setup(&f, 2, (int[]){5, 20}, 3 * 20 + 17); /* element [3,17] */
    char msg[512];
    nb_gradcheck_result r;
    cr_assert_not(nb_gradcheck_passes(f.g, f.loss, NULL, &r, msg, sizeof msg), "passed: %s", msg);
    cr_assert(strstr(msg, "dense/kernel[3,17]"), "%s", msg);
    cr_assert(strstr(msg, "gradcheck: relative error"), "%s", msg);
    cr_assert(strstr(msg, "param 'dense/kernel' [5,20] index 77"), "%s", msg);
    cr_assert_eq(r.index, 77);
    cr_assert_eq(r.rank, 2);
    cr_assert(r.coord[0] == 3 && r.coord[1] == 17);
    cr_assert_eq(r.checked, 100);
    /* 3x against 2x: relative error 1/3 */
    cr_assert(fabs(r.max_rel_error - 1.0 / 3.0) < 1e-2, "%g", r.max_rel_error);
    teardown(&f);

    setup(&f, 3, (int[]){2, 3, 4}, 1 * 12 + 2 * 4 + 1); /* [1,2,1] */
    cr_assert_not(nb_gradcheck_passes(f.g, f.loss, NULL, NULL, msg, sizeof msg));
    cr_assert(strstr(msg, "dense/kernel[1,2,1]"), "%s", msg);
    teardown(&f);
}

Test(gradcheck, the_tolerance_decides_the_verdict) {
    fixture f;
    setup(&f, 2, (int[]){3, 4}, 5);
    char msg[512];
    cr_assert_not(nb_gradcheck_passes(f.g, f.loss, &(nb_gradcheck_opts){.tolerance = 0.3}, NULL, msg, sizeof msg));
    cr_assert(strstr(msg, "> 0.3 at") && strstr(msg, "dense/kernel[1,1]"), "%s", msg);
    cr_assert(nb_gradcheck_passes(f.g, f.loss, &(nb_gradcheck_opts){.tolerance = 0.4}, NULL, msg, sizeof msg), "%s",
              msg);
    teardown(&f);
    /* a right op passes the default (1e-2), and msg may be left out */
    setup(&f, 2, (int[]){3, 4}, (size_t)-1);
    cr_assert(nb_gradcheck_passes(f.g, f.loss, NULL, NULL, NULL, 0));
    nb_assert_gradcheck(f.g, f.loss, 1e-2);
    nb_assert_gradcheck_opts(f.g, f.loss, &(nb_gradcheck_opts){.tolerance = 1e-2, .max_per_tensor = 5, .seed = 9});
    teardown(&f);
}

Test(gradcheck, a_check_that_cannot_run_says_why) {
    fixture f;
    setup(&f, 1, (int[]){4}, (size_t)-1);
    nb_node *vec = nb_scale(f.g, nb_param(f.g, f.w), 2.0f); /* not a scalar */
    t_ok(f.g);
    char msg[512];
    cr_assert_not(nb_gradcheck_passes(f.g, vec, NULL, NULL, msg, sizeof msg));
    cr_assert(strstr(msg, "gradcheck failed to run: ") && strstr(msg, "one element"), "%s", msg);
    teardown(&f);
}

/* The elements a check visits, found by making one element wrong at a time
 * would be slow; instead a wrong element counts as visited when the check
 * fails. Here: n = 50, max_per_tensor 7 checks exactly 7. */
static bool visits(size_t bad, const nb_gradcheck_opts *o) {
    fixture f;
    setup(&f, 2, (int[]){5, 10}, bad);
    nb_gradcheck_result r;
    const bool failed = !nb_gradcheck_passes(f.g, f.loss, o, &r, NULL, 0);
    cr_assert_eq(r.checked, o->max_per_tensor ? o->max_per_tensor : 50);
    teardown(&f);
    return failed;
}

Test(gradcheck, sampled_elements_are_as_many_as_asked_spread_or_drawn_by_the_seed) {
    /* spread evenly: i·50/7 for i = 0..6 */
    const nb_gradcheck_opts even = {.max_per_tensor = 7};
    bool want[50] = {false};
    for (size_t i = 0; i < 7; i++) want[i * 50 / 7] = true;
    for (size_t k = 0; k < 50; k++) cr_assert_eq(visits(k, &even), want[k], "element %zu", k);

    /* drawn: 7 distinct elements, the same ones for the same seed, others
     * for another seed */
    const nb_gradcheck_opts s1 = {.max_per_tensor = 7, .seed = 1}, s2 = {.max_per_tensor = 7, .seed = 2};
    int n1 = 0, same = 0, differ = 0;
    for (size_t k = 0; k < 50; k++) {
        const bool a = visits(k, &s1), b = visits(k, &s2);
        cr_assert_eq(visits(k, &s1), a, "seed 1 is not repeatable at %zu", k);
        n1 += a;
        same += a && b;
        differ += a != b;
    }
    cr_assert_eq(n1, 7);
    cr_assert_gt(differ, 0, "seeds 1 and 2 drew the same elements");
    cr_assert_lt(same, 7);
    /* more than the tensor holds: all of it */
    fixture f;
    setup(&f, 1, (int[]){6}, (size_t)-1);
    nb_gradcheck_result r;
    cr_assert(nb_gradcheck_passes(f.g, f.loss, &(nb_gradcheck_opts){.max_per_tensor = 60, .seed = 3}, &r, NULL, 0));
    cr_assert_eq(r.checked, 6);
    teardown(&f);
}
