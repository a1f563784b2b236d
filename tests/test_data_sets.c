/* Datasets made from datasets: selection and relabelling by class, random
 * samples, splits, concatenation, and the batch iterator of custom loops.
 *
 * Every example is recognisable: feature j of example i is 1000 i + j, so a
 * result's rows say exactly which source examples they came from.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_count.h"
#include "nabla/nabla.h"

/* n examples of dim features, label i % classes, n_classes = classes. */
static nb_dataset make_set(int n, int dim, int classes) {
    nb_dataset d = {.n = n, .dim = dim, .rows = 1, .cols = dim, .n_classes = classes};
    d.x = malloc((size_t)n * dim * sizeof *d.x);
    d.y = malloc((size_t)n * sizeof *d.y);
    cr_assert(d.x && d.y);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < dim; j++) d.x[i * dim + j] = (float)(1000 * i + j);
        d.y[i] = (float)(i % classes);
    }
    return d;
}

/* The source index of example k of d, checking that its row is intact. */
static int origin(const nb_dataset *d, int k) {
    int i = (int)(d->x[(size_t)k * d->dim] / 1000);
    for (int j = 0; j < d->dim; j++)
        cr_assert_eq(d->x[(size_t)k * d->dim + j], (float)(1000 * i + j), "row %d is torn", k);
    return i;
}

static void expect_msg(const char *part) {
    const char *m = nb_last_error();
    cr_assert(strstr(m, part), "message '%s' lacks '%s'", m, part);
}

static void expect_empty(const nb_dataset *d) {
    cr_assert(!d->x && !d->y && d->n == 0 && d->dim == 0 && d->rows == 0 && d->cols == 0 &&
              d->n_classes == 0, "output not left zeroed");
}

/* A dataset an error must leave zeroed: non-zero fields, no arrays to leak. */
static nb_dataset junk(void) { return (nb_dataset){.n = 7, .dim = 3, .rows = 1, .cols = 3, .n_classes = 2}; }

/* ---- select ---- */

Test(data_sets, select_keeps_chosen_classes_in_order_and_relabels_them_in_order) {
    // Géron's model A: Fashion-MNIST without sandal (5) and shirt (6).
    nb_dataset src = make_set(40, 3, 10), a;
    src.rows = 3, src.cols = 1;
    const int keep[8] = {0, 1, 2, 3, 4, 7, 8, 9};
    cr_assert_eq(nb_dataset_select(&src, keep, 8, NULL, &a), NB_OK, "%s", nb_last_error());
    cr_assert_eq(a.n, 32);
    cr_assert_eq(a.dim, 3);
    cr_assert_eq(a.rows, 3);
    cr_assert_eq(a.cols, 1);
    cr_assert_eq(a.n_classes, 8);
    cr_assert_neq(a.x, src.x);
    int k = 0;
    for (int i = 0; i < src.n; i++) {
        int c = i % 10;
        if (c == 5 || c == 6) continue;
        cr_assert_eq(origin(&a, k), i, "example %d", k);
        cr_assert_eq(a.y[k], (float)(c < 5 ? c : c - 2), "example %d: label %g", k, a.y[k]);
        k++;
    }
    nb_dataset_free(&a);
    nb_dataset_free(&src);
}

Test(data_sets, select_with_new_labels_makes_shirt_1_and_sandal_0) {
    // Géron's model B: shirt (6) against sandal (5).
    nb_dataset src = make_set(30, 2, 10), b;
    cr_assert_eq(nb_dataset_select(&src, (int[]){6, 5}, 2, (int[]){1, 0}, &b), NB_OK, "%s",
                 nb_last_error());
    cr_assert_eq(b.n, 6);
    cr_assert_eq(b.n_classes, 2);
    const int want_origin[6] = {5, 6, 15, 16, 25, 26};
    const float want_label[6] = {0, 1, 0, 1, 0, 1};
    for (int k = 0; k < 6; k++) {
        cr_assert_eq(origin(&b, k), want_origin[k]);
        cr_assert_eq(b.y[k], want_label[k]);
    }
    nb_dataset_free(&b);
    nb_dataset_free(&src);
}

Test(data_sets, select_merges_classes_that_share_a_new_label) {
    nb_dataset src = make_set(12, 1, 4), m;
    // classes 0 and 3 -> 2, class 1 -> 0; class 2 dropped; n_classes = 3
    cr_assert_eq(nb_dataset_select(&src, (int[]){0, 1, 3}, 3, (int[]){2, 0, 2}, &m), NB_OK);
    cr_assert_eq(m.n, 9);
    cr_assert_eq(m.n_classes, 3);
    for (int k = 0; k < m.n; k++) {
        int c = origin(&m, k) % 4;
        cr_assert_neq(c, 2);
        cr_assert_eq(m.y[k], c == 1 ? 0.0f : 2.0f);
    }
    nb_dataset_free(&m);
    nb_dataset_free(&src);
}

Test(data_sets, select_in_place_replaces_the_source_and_keeps_it_on_error) {
    nb_dataset d = make_set(10, 2, 5);
    cr_assert_eq(nb_dataset_select(&d, (int[]){9}, 1, NULL, &d), NB_ERROR);
    expect_msg("class 9 (entry 0) is outside the source's [0, 5)");
    cr_assert_eq(d.n, 10);
    cr_assert_eq(d.x[19], 9001.0f);
    cr_assert_eq(nb_dataset_select(&d, (int[]){4, 1}, 2, NULL, &d), NB_OK);
    cr_assert_eq(d.n, 4);
    cr_assert_eq(d.n_classes, 2);
    const int want[4] = {1, 4, 6, 9};
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(origin(&d, k), want[k]);
        cr_assert_eq(d.y[k], want[k] % 5 == 4 ? 0.0f : 1.0f);
    }
    nb_dataset_free(&d);
}

Test(data_sets, select_refuses_bad_classes_labels_and_empty_results) {
    nb_dataset src = make_set(6, 2, 3), out;
    struct {
        const int *classes;
        int n;
        const int *labels;
        const char *msg;
    } bad[] = {
        {NULL, 1, NULL, "1 classes asked for (classes NULL); need 1 to the source's 3"},
        {(int[]){0}, 0, NULL, "0 classes asked for"},
        {(int[]){0, 1, 2, 0}, 4, NULL, "4 classes asked for"},
        {(int[]){0, -1}, 2, NULL, "class -1 (entry 1) is outside the source's [0, 3)"},
        {(int[]){0, 3}, 2, NULL, "class 3 (entry 1) is outside"},
        {(int[]){1, 2, 1}, 3, NULL, "class 1 is chosen twice (entry 2)"},
        {(int[]){1}, 1, (int[]){-2}, "new label -2 (entry 0) is outside [0, 16777216)"},
        {(int[]){1}, 1, (int[]){1 << 24}, "new label 16777216 (entry 0)"},
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        out = junk();
        cr_assert_eq(nb_dataset_select(&src, bad[t].classes, bad[t].n, bad[t].labels, &out),
                     NB_ERROR, "case %zu accepted", t);
        expect_msg("data: nb_dataset_select: ");
        expect_msg(bad[t].msg);
        expect_empty(&out);
    }
    // No example of the chosen class.
    nb_dataset two = make_set(2, 2, 3);  // labels 0, 1 only
    out = junk();
    cr_assert_eq(nb_dataset_select(&two, (int[]){2}, 1, NULL, &out), NB_ERROR);
    expect_msg("none of the 2 examples has one of the 1 chosen classes");
    expect_empty(&out);
    // Labels that are not class indices.
    src.y[4] = 1.5f;
    cr_assert_eq(nb_dataset_select(&src, (int[]){1}, 1, NULL, &out), NB_ERROR);
    expect_msg("label 1.5 of example 4 is not a class index in [0, 3)");
    src.y[4] = NAN;
    cr_assert_eq(nb_dataset_select(&src, (int[]){1}, 1, NULL, &out), NB_ERROR);
    expect_msg("of example 4 is not a class index");
    src.n_classes = 0;  // regression targets
    cr_assert_eq(nb_dataset_select(&src, (int[]){1}, 1, NULL, &out), NB_ERROR);
    expect_msg("labels are not class indices (n_classes is 0)");
    expect_empty(&out);
    nb_dataset empty = {0};
    cr_assert_eq(nb_dataset_select(&empty, (int[]){0}, 1, NULL, &out), NB_ERROR);
    expect_msg("nb_dataset_select: source dataset is empty");
    cr_assert_eq(nb_dataset_select(NULL, (int[]){0}, 1, NULL, &out), NB_ERROR);
    expect_msg("nb_dataset_select: source dataset is NULL");
    cr_assert_eq(nb_dataset_select(&two, (int[]){0}, 1, NULL, NULL), NB_ERROR);
    expect_msg("nb_dataset_select: out is NULL");
    nb_dataset_free(&two);
    nb_dataset_free(&src);
}

/* ---- sample ---- */

Test(data_sets, sample_is_a_subset_without_replacement_in_source_order_fixed_by_seed) {
    nb_dataset src = make_set(50, 3, 4), s, t;
    cr_assert_eq(nb_dataset_sample(&src, 20, 7, &s), NB_OK, "%s", nb_last_error());
    cr_assert_eq(s.n, 20);
    cr_assert_eq(s.dim, 3);
    cr_assert_eq(s.n_classes, 4);
    int prev = -1;
    for (int k = 0; k < s.n; k++) {
        int i = origin(&s, k);
        cr_assert_gt(i, prev, "example %d: %d after %d (repeated or out of order)", k, i, prev);
        cr_assert_eq(s.y[k], src.y[i]);
        prev = i;
    }
    cr_assert_eq(nb_dataset_sample(&src, 20, 7, &t), NB_OK);
    cr_assert_arr_eq(s.x, t.x, 20 * 3 * sizeof(float), "the same seed gave another sample");
    nb_dataset_free(&t);
    cr_assert_eq(nb_dataset_sample(&src, 20, 8, &t), NB_OK);
    cr_assert_neq(memcmp(s.x, t.x, 20 * 3 * sizeof(float)), 0, "seeds 7 and 8 gave one sample");
    nb_dataset_free(&t);
    cr_assert_eq(nb_dataset_sample(&src, 50, 3, &t), NB_OK);  // all of them: a copy
    cr_assert_arr_eq(t.x, src.x, 50 * 3 * sizeof(float));
    cr_assert_arr_eq(t.y, src.y, 50 * sizeof(float));
    nb_dataset_free(&t);
    nb_dataset_free(&s);
    nb_dataset_free(&src);
}

Test(data_sets, sample_chooses_every_example_equally_often) {
    // 3 of 6 over 3000 seeds: each example is in 1500 samples on average,
    // standard deviation sqrt(3000 / 4) = 27; 5 sigma is 137.
    nb_dataset src = make_set(6, 1, 2), s;
    int hits[6] = {0};
    for (uint64_t seed = 0; seed < 3000; seed++) {
        cr_assert_eq(nb_dataset_sample(&src, 3, seed, &s), NB_OK);
        for (int k = 0; k < 3; k++) hits[origin(&s, k)]++;
        nb_dataset_free(&s);
    }
    for (int i = 0; i < 6; i++) cr_assert(abs(hits[i] - 1500) < 137, "example %d: %d", i, hits[i]);
    nb_dataset_free(&src);
}

Test(data_sets, sample_refuses_counts_outside_one_to_n) {
    nb_dataset src = make_set(5, 2, 2), out;
    int bad[] = {0, -1, 6, INT_MAX};
    for (int t = 0; t < 4; t++) {
        out = junk();
        cr_assert_eq(nb_dataset_sample(&src, bad[t], 1, &out), NB_ERROR, "count %d", bad[t]);
        expect_msg("data: nb_dataset_sample: count ");
        expect_msg("is not in [1, 5]");
        expect_empty(&out);
    }
    cr_assert_eq(nb_dataset_sample(&src, 9, 1, &src), NB_ERROR);
    cr_assert_eq(src.n, 5);  // in place: kept on error
    cr_assert_eq(nb_dataset_sample(&src, 2, 1, &src), NB_OK);
    cr_assert_eq(src.n, 2);
    cr_assert_eq(nb_dataset_sample(NULL, 1, 1, &out), NB_ERROR);
    expect_msg("nb_dataset_sample: source dataset is NULL");
    cr_assert_eq(nb_dataset_sample(&src, 1, 1, NULL), NB_ERROR);
    expect_msg("nb_dataset_sample: out is NULL");
    nb_dataset_free(&src);
}

/* ---- split ---- */

Test(data_sets, split_without_shuffle_gives_two_slices_in_order) {
    nb_dataset src = make_set(10, 2, 3), a, b;
    src.rows = 2, src.cols = 1;
    cr_assert_eq(nb_dataset_split(&src, 7, false, 0, &a, &b), NB_OK, "%s", nb_last_error());
    cr_assert_eq(a.n, 7);
    cr_assert_eq(b.n, 3);
    cr_assert(a.rows == 2 && a.cols == 1 && b.rows == 2 && b.cols == 1);
    cr_assert(a.n_classes == 3 && b.n_classes == 3);
    for (int k = 0; k < 7; k++) cr_assert_eq(origin(&a, k), k);
    for (int k = 0; k < 3; k++) cr_assert_eq(origin(&b, k), 7 + k);
    cr_assert_arr_eq(b.y, src.y + 7, 3 * sizeof(float));
    nb_dataset_free(&a);
    nb_dataset_free(&b);
    nb_dataset_free(&src);
}

Test(data_sets, split_with_shuffle_partitions_the_examples_in_an_order_fixed_by_seed) {
    nb_dataset src = make_set(40, 2, 5), a, b, a2, b2;
    cr_assert_eq(nb_dataset_split(&src, 30, true, 11, &a, &b), NB_OK);
    cr_assert(a.n == 30 && b.n == 10);
    int seen[40] = {0}, in_order = 1;
    for (int k = 0; k < 30; k++) {
        int i = origin(&a, k);
        seen[i]++;
        cr_assert_eq(a.y[k], src.y[i]);
        in_order &= i == k;
    }
    for (int k = 0; k < 10; k++) seen[origin(&b, k)]++;
    for (int i = 0; i < 40; i++) cr_assert_eq(seen[i], 1, "example %d is in %d parts", i, seen[i]);
    cr_assert(!in_order, "the shuffled split is not shuffled");
    cr_assert_eq(nb_dataset_split(&src, 30, true, 11, &a2, &b2), NB_OK);
    cr_assert_arr_eq(a.x, a2.x, 30 * 2 * sizeof(float));
    cr_assert_arr_eq(b.x, b2.x, 10 * 2 * sizeof(float));
    nb_dataset_free(&a2);
    nb_dataset_free(&b2);
    cr_assert_eq(nb_dataset_split(&src, 30, true, 12, &a2, &b2), NB_OK);
    cr_assert_neq(memcmp(a.x, a2.x, 30 * 2 * sizeof(float)), 0, "seeds 11 and 12 split alike");
    nb_dataset_free(&a2);
    nb_dataset_free(&b2);
    nb_dataset_free(&a);
    nb_dataset_free(&b);
    nb_dataset_free(&src);
}

Test(data_sets, split_into_the_source_replaces_it) {
    // The usual train/validation idiom: keep the training part in place.
    nb_dataset d = make_set(8, 1, 2), val;
    cr_assert_eq(nb_dataset_split(&d, 6, false, 0, &d, &val), NB_OK);
    cr_assert(d.n == 6 && val.n == 2);
    cr_assert_eq(origin(&d, 5), 5);
    cr_assert_eq(origin(&val, 0), 6);
    nb_dataset rest;
    cr_assert_eq(nb_dataset_split(&d, 2, true, 3, &rest, &d), NB_OK);
    cr_assert(rest.n == 2 && d.n == 4);
    nb_dataset_free(&rest);
    nb_dataset_free(&val);
    nb_dataset_free(&d);
}

Test(data_sets, split_refuses_empty_parts_and_bad_outputs) {
    nb_dataset src = make_set(5, 2, 2), a, b;
    int bad[] = {0, 5, -1, 6, INT_MAX};
    for (int t = 0; t < 5; t++) {
        a = junk(), b = junk();
        cr_assert_eq(nb_dataset_split(&src, bad[t], t % 2, 1, &a, &b), NB_ERROR, "count %d", bad[t]);
        expect_msg("data: nb_dataset_split: count ");
        expect_msg("leaves a part empty: need 1 to 4 of the 5 examples");
        expect_empty(&a);
        expect_empty(&b);
    }
    cr_assert_eq(nb_dataset_split(&src, 9, false, 0, &src, &b), NB_ERROR);
    cr_assert_eq(src.n, 5);  // kept
    expect_empty(&b);
    a = junk();
    cr_assert_eq(nb_dataset_split(&src, 2, false, 0, &a, &a), NB_ERROR);
    expect_msg("first and second are the same dataset");
    expect_empty(&a);
    cr_assert_eq(nb_dataset_split(&src, 2, false, 0, &a, NULL), NB_ERROR);
    expect_msg("first or second is NULL");
    nb_dataset one = make_set(1, 2, 2);
    cr_assert_eq(nb_dataset_split(&one, 1, false, 0, &a, &b), NB_ERROR);
    expect_msg("need 1 to 0 of the 1 examples");
    cr_assert_eq(nb_dataset_split(NULL, 1, false, 0, &a, &b), NB_ERROR);
    expect_msg("nb_dataset_split: source dataset is NULL");
    nb_dataset_free(&one);
    nb_dataset_free(&src);
}

/* ---- concat ---- */

Test(data_sets, concat_puts_b_after_a_and_keeps_the_larger_class_count) {
    nb_dataset a = make_set(3, 2, 3), b = make_set(4, 2, 5), c;
    for (int i = 0; i < 8; i++) b.x[i] += 3000;  // b's examples are 3..6
    cr_assert_eq(nb_dataset_concat(&a, &b, &c), NB_OK, "%s", nb_last_error());
    cr_assert_eq(c.n, 7);
    cr_assert_eq(c.n_classes, 5);
    for (int k = 0; k < 7; k++) cr_assert_eq(origin(&c, k), k);
    const float want_y[7] = {0, 1, 2, 0, 1, 2, 3};
    cr_assert_arr_eq(c.y, want_y, sizeof want_y);
    nb_dataset_free(&c);
    b.n_classes = 0;  // targets, not classes
    cr_assert_eq(nb_dataset_concat(&a, &b, &c), NB_OK);
    cr_assert_eq(c.n_classes, 0);
    nb_dataset_free(&c);
    // In place, either side.
    cr_assert_eq(nb_dataset_concat(&a, &b, &b), NB_OK);
    cr_assert_eq(b.n, 7);
    cr_assert_eq(origin(&b, 6), 6);
    cr_assert_eq(nb_dataset_concat(&a, &a, &a), NB_OK);
    cr_assert_eq(a.n, 6);
    cr_assert_eq(origin(&a, 4), 1);
    nb_dataset_free(&a);
    nb_dataset_free(&b);
}

Test(data_sets, concat_refuses_examples_of_different_shapes_naming_both) {
    nb_dataset a = make_set(3, 6, 2), b = make_set(2, 4, 2), c = junk();
    cr_assert_eq(nb_dataset_concat(&a, &b, &c), NB_ERROR);
    expect_msg("data: nb_dataset_concat: examples differ in shape: 1 x 6 (6 features) and 1 x 4 "
               "(4 features)");
    expect_empty(&c);
    nb_dataset_free(&b);
    b = make_set(2, 6, 2);
    b.rows = 2, b.cols = 3;  // same dim, other image shape
    cr_assert_eq(nb_dataset_concat(&a, &b, &a), NB_ERROR);
    expect_msg("1 x 6 (6 features) and 2 x 3 (6 features)");
    cr_assert_eq(a.n, 3);  // kept
    nb_dataset empty = {0};
    cr_assert_eq(nb_dataset_concat(&a, &empty, &c), NB_ERROR);
    expect_msg("nb_dataset_concat: second dataset is empty");
    cr_assert_eq(nb_dataset_concat(NULL, &a, &c), NB_ERROR);
    expect_msg("nb_dataset_concat: first dataset is NULL");
    cr_assert_eq(nb_dataset_concat(&a, &a, NULL), NB_ERROR);
    expect_msg("nb_dataset_concat: out is NULL");
    // Counts past INT_MAX are refused before any allocation: fake sizes.
    nb_dataset big = a;
    big.n = INT_MAX - 1;
    cr_assert_eq(nb_dataset_concat(&big, &a, &c), NB_ERROR);
    expect_msg("2147483646 + 3 examples is more than 2147483647");
    expect_empty(&c);
    nb_dataset_free(&a);
    nb_dataset_free(&b);
}

/* ---- batches ---- */

Test(data_sets, batches_cover_every_example_once_per_epoch_with_a_partial_last_batch) {
    nb_dataset d = make_set(10, 3, 4);
    nb_batches *it = nb_batches_new(&d, 4, true, 5);
    cr_assert_not_null(it, "%s", nb_last_error());
    cr_assert_eq(nb_batches_per_epoch(it), 3);
    cr_assert_eq(nb_batches_epoch(it), 0);
    int first_order[10];
    for (int epoch = 1; epoch <= 3; epoch++) {
        int seen[10] = {0}, order[10], at = 0, sizes[3], nb = 0;
        const float *x, *y;
        int count;
        while ((count = nb_batches_next(it, &x, &y)) > 0) {
            cr_assert_eq(nb_batches_epoch(it), epoch);
            cr_assert_lt(nb, 3, "more than 3 batches in epoch %d", epoch);
            sizes[nb++] = count;
            nb_dataset view = {.x = (float *)x, .y = (float *)y, .n = count, .dim = 3};
            for (int k = 0; k < count; k++) {
                int i = origin(&view, k);
                cr_assert_eq(y[k], d.y[i]);
                seen[i]++;
                order[at++] = i;
            }
        }
        cr_assert_eq(count, 0);
        cr_assert(!x && !y);
        cr_assert_eq(nb, 3);
        cr_assert(sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2, "sizes %d %d %d", sizes[0],
                  sizes[1], sizes[2]);
        for (int i = 0; i < 10; i++) cr_assert_eq(seen[i], 1, "epoch %d, example %d", epoch, i);
        // The order is nb_shuffle's for the epoch (as in nb_fit).
        int perm[10];
        nb_shuffle(perm, 10, 5, (uint64_t)epoch);
        cr_assert_arr_eq(order, perm, sizeof perm, "epoch %d's order", epoch);
        if (epoch == 1) memcpy(first_order, order, sizeof order);
        else cr_assert_neq(memcmp(first_order, order, sizeof order), 0, "epoch %d not reshuffled", epoch);
    }
    nb_batches_free(it);
    nb_dataset_free(&d);
}

Test(data_sets, batches_without_shuffle_come_in_order_straight_from_the_dataset) {
    nb_dataset d = make_set(5, 2, 2);
    nb_batches *it = nb_batches_new(&d, 2, false, 0);
    cr_assert_not_null(it);
    for (int epoch = 1; epoch <= 2; epoch++) {
        const float *x, *y;
        for (int start = 0; start < 5; start += 2) {
            int count = nb_batches_next(it, &x, &y);
            cr_assert_eq(count, start == 4 ? 1 : 2);
            cr_assert_eq(x, d.x + start * 2);
            cr_assert_eq(y, d.y + start);
        }
        cr_assert_eq(nb_batches_next(it, &x, &y), 0);
    }
    nb_batches_free(it);
    // A batch larger than the dataset is the whole dataset.
    it = nb_batches_new(&d, 100, true, 1);
    cr_assert_eq(nb_batches_per_epoch(it), 1);
    const float *x, *y;
    cr_assert_eq(nb_batches_next(it, &x, &y), 5);
    cr_assert_eq(nb_batches_next(it, &x, &y), 0);
    nb_batches_free(it);
    nb_dataset_free(&d);
}

Test(data_sets, batches_allocate_nothing_after_creation) {
    cr_assert(alloc_count_works(), "this build cannot count allocations");
    nb_dataset d = make_set(1000, 16, 10);
    nb_batches *it = nb_batches_new(&d, 32, true, 9);
    cr_assert_not_null(it);
    const float *x, *y;
    double sum = 0;
    unsigned long before = alloc_count();
    int batches = 0;
    for (int epoch = 0; epoch < 3; epoch++) {
        int count;
        while ((count = nb_batches_next(it, &x, &y)) > 0) {
            sum += x[0] + y[count - 1];
            batches++;
        }
    }
    unsigned long after = alloc_count();
    cr_assert_eq(batches, 3 * 32);
    cr_assert_eq(after - before, 0, "%lu allocations in 3 epochs (sum %g)", after - before, sum);
    nb_batches_free(it);
    nb_dataset_free(&d);
}

Test(data_sets, batches_refuse_bad_arguments) {
    nb_dataset d = make_set(4, 2, 2), empty = {0};
    cr_assert_null(nb_batches_new(&d, 0, true, 1));
    expect_msg("data: nb_batches_new: batch size 0 is below 1");
    cr_assert_null(nb_batches_new(&empty, 2, true, 1));
    expect_msg("nb_batches_new: dataset is empty");
    cr_assert_null(nb_batches_new(NULL, 2, true, 1));
    expect_msg("nb_batches_new: dataset is NULL");
    const float *x, *y;
    cr_assert_eq(nb_batches_next(NULL, &x, &y), -1);
    expect_msg("nb_batches_next: the iterator is NULL");
    nb_batches *it = nb_batches_new(&d, 2, true, 1);
    cr_assert_eq(nb_batches_next(it, NULL, &y), -1);
    expect_msg("nb_batches_next: x is NULL");
    cr_assert_eq(nb_batches_next(it, &x, NULL), -1);
    expect_msg("nb_batches_next: y is NULL");
    cr_assert_eq(nb_batches_epoch(NULL), 0);
    cr_assert_eq(nb_batches_per_epoch(NULL), 0);
    nb_batches_free(it);
    nb_batches_free(NULL);
    nb_dataset_free(&d);
}
