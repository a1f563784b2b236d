/* After the first step, a training step allocates nothing on the heap:
 * counted over the whole process (nabla, BLIS, libgomp). */
#include <criterion/criterion.h>

#include "alloc_count.h"
#include "helpers.h"

static void check_step_allocates_nothing(int threads) {
    cr_assert(alloc_count_works(), "this build cannot count allocations");
    nb_set_num_threads(threads);
    nb_tensor *w1 = t_tensor("w1", 2, (int[]){784, 64}, -0.05f, 0.05f, 1);
    nb_tensor *b1 = t_tensor("b1", 1, (int[]){64}, 0, 0, 2);
    nb_tensor *w2 = t_tensor("w2", 2, (int[]){64, 10}, -0.1f, 0.1f, 3);
    static float x[64 * 784], t[64 * 10];
    for (int i = 0; i < 64 * 784; i++) x[i] = (float)(i % 255) / 255.0f;
    for (int i = 0; i < 64 * 10; i++) t[i] = (float)(i % 10 == 3);

    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){64, 784}), *target = nb_input(g, "t", 2, (int[]){64, 10});
    nb_node *h = nb_add(g, nb_matmul(g, in, nb_param(g, w1)), nb_param(g, b1));
    nb_node *y = nb_matmul(g, nb_mul(g, h, h), nb_param(g, w2));
    nb_node *d = nb_sub(g, y, target);
    nb_node *loss = nb_mean(g, nb_mul(g, d, d));
    t_ok(g);

    for (int step = 0; step < 2; step++) { /* warm-up: plans the arena, starts the thread pools */
        nb_feed(g, in, x, 64);
        nb_feed(g, target, t, 64);
        nb_forward(g, NB_TRAINING);
        nb_backward(g, loss);
    }
    unsigned long before = alloc_count();
    for (int step = 0; step < 5; step++) {
        int batch = step == 4 ? 40 : 64; /* a smaller last batch too */
        nb_feed(g, in, x, batch);
        nb_feed(g, target, t, batch);
        nb_forward(g, NB_TRAINING);
        nb_backward(g, loss);
    }
    unsigned long after = alloc_count();
    t_ok(g);
    cr_assert_eq(after - before, 0, "%lu heap allocations in 5 replayed steps", after - before);
    nb_graph_free(g);
    nb_tensor_free(w1), nb_tensor_free(b1), nb_tensor_free(w2);
}

Test(alloc, a_replayed_training_step_allocates_nothing_on_one_thread) { check_step_allocates_nothing(1); }
Test(alloc, a_replayed_training_step_allocates_nothing_on_two_threads) { check_step_allocates_nothing(2); }
