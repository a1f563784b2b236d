/* The grad-ready hook (nb_graph_on_grad_ready, nb_graph_grad_order): during
 * backward it names each trainable tensor once, in the order
 * nb_graph_grad_order gives, the last layer's first, and at that moment
 * the gradient already holds its final bits; a tensor used twice (a shared
 * layer) is named after its last writer; a frozen one is not named. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/nabla.h"

#define MAX_T 8

typedef struct seen {
    int n, nulls;
    nb_tensor *t[MAX_T];
    float *copy[MAX_T]; /* each gradient as it was when named */
} seen;

static void record(void *user, nb_tensor *t) {
    seen *s = user;
    if (!t) {
        s->nulls++;
        return;
    }
    cr_assert_lt(s->n, MAX_T, "named more than %d times", MAX_T);
    s->t[s->n] = t;
    s->copy[s->n] = malloc(t->size * sizeof(float));
    memcpy(s->copy[s->n], t->grad, t->size * sizeof(float));
    s->n++;
}

typedef struct net {
    nb_graph *g;
    nb_node *x, *loss;
    nb_tensor *w1, *b1, *shared, *w2, *b2, *target;
} net;

/* x[B,4] -> tanh(x·w1 + b1) -> tanh(·shared) -> tanh(·shared) -> ·w2 + b2, MSE. */
static net build(int batch) {
    net n = {.g = nb_graph_new()};
    n.w1 = t_tensor("w1", 2, (int[]){4, 8}, -0.5f, 0.5f, 1);
    n.b1 = t_tensor("b1", 1, (int[]){8}, -0.1f, 0.1f, 2);
    n.shared = t_tensor("shared", 2, (int[]){8, 8}, -0.4f, 0.4f, 3);
    n.w2 = t_tensor("w2", 2, (int[]){8, 3}, -0.5f, 0.5f, 4);
    n.b2 = t_tensor("b2", 1, (int[]){3}, -0.1f, 0.1f, 5);
    n.target = t_tensor("target", 2, (int[]){batch, 3}, -1, 1, 6);
    n.target->trainable = false;
    nb_graph *g = n.g;
    n.x = nb_input(g, "x", 2, (int[]){batch, 4});
    nb_node *h = nb_tanh(g, nb_add(g, nb_matmul(g, n.x, nb_param(g, n.w1)), nb_param(g, n.b1)));
    h = nb_tanh(g, nb_matmul(g, h, nb_param(g, n.shared)));
    h = nb_tanh(g, nb_matmul(g, h, nb_param(g, n.shared)));
    nb_node *out = nb_add(g, nb_matmul(g, h, nb_param(g, n.w2)), nb_param(g, n.b2));
    n.loss = nb_mse(g, out, nb_param(g, n.target));
    t_ok(g);
    return n;
}

static void free_net(net *n) {
    nb_graph_free(n->g);
    nb_tensor_free(n->w1), nb_tensor_free(n->b1), nb_tensor_free(n->shared);
    nb_tensor_free(n->w2), nb_tensor_free(n->b2), nb_tensor_free(n->target);
}

static void step(net *n, int batch) {
    float *x = malloc(sizeof(float) * (size_t)batch * 4);
    for (int i = 0; i < batch * 4; i++) x[i] = (float)((i * 37) % 11) / 5.0f - 1.0f;
    cr_assert_eq(nb_feed(n->g, n->x, x, batch), NB_OK);
    cr_assert_eq(nb_forward(n->g, NB_TRAINING), NB_OK);
    cr_assert_eq(nb_backward(n->g, n->loss), NB_OK, "%s", nb_graph_error(n->g));
    free(x);
}

static void check_hook(int batch, int threads) {
    nb_set_num_threads(threads);
    net n = build(batch);
    nb_tensor *order[MAX_T];
    const int count = nb_graph_grad_order(n.g, n.loss, order, MAX_T);
    cr_assert_eq(count, 5, "5 trainable tensors, not %d", count);
    cr_assert(order[0] == n.w2 || order[0] == n.b2, "the last layer's first");
    cr_assert(order[3] == n.b1 || order[3] == n.w1, "the first layer's last: %s", order[3]->name);
    cr_assert_eq(order[2], n.shared, "the shared tensor once its first use's backward is done");
    seen s = {0};
    nb_graph_on_grad_ready(n.g, record, &s);
    step(&n, batch);
    cr_assert_eq(s.n, count, "named %d times, not %d", s.n, count);
    for (int i = 0; i < count; i++) {
        cr_assert_eq(s.t[i], order[i], "call %d names %s, the order says %s", i, s.t[i]->name, order[i]->name);
        cr_assert_eq(memcmp(s.copy[i], s.t[i]->grad, s.t[i]->size * sizeof(float)), 0,
                     "%s's gradient changed after it was named", s.t[i]->name);
        free(s.copy[i]);
    }
    cr_assert_gt(s.nulls, 0, "ops that complete nothing call the hook with NULL");

    /* frozen: not named, and the order leaves it out */
    n.w1->trainable = false;
    cr_assert_eq(nb_graph_grad_order(n.g, n.loss, order, MAX_T), 4);
    memset(&s, 0, sizeof s);
    step(&n, batch);
    cr_assert_eq(s.n, 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_neq(s.t[i], n.w1);
        free(s.copy[i]);
    }

    /* removed: not called */
    nb_graph_on_grad_ready(n.g, NULL, NULL);
    memset(&s, 0, sizeof s);
    step(&n, batch);
    cr_assert_eq(s.n + s.nulls, 0);
    free_net(&n);
    nb_set_num_threads(1);
}

Test(grad_ready, names_each_gradient_once_complete_in_backward_order) { check_hook(16, 1); }

/* at a batch where the team runs the passes, tid 0 calls the hook */
Test(grad_ready, the_same_in_a_team_of_two_threads) { check_hook(256, 2); }

Test(grad_ready, order_refuses_a_loss_of_another_graph) {
    net a = build(4), b = build(4);
    cr_assert_eq(nb_graph_grad_order(a.g, b.loss, NULL, 0), -1);
    cr_assert(strstr(nb_graph_error(a.g), "another graph"), "%s", nb_graph_error(a.g));
    free_net(&a), free_net(&b);
}
