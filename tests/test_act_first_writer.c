/* The activations, softmax and log-softmax as first writers of their
 * input's gradient (nb_op.assigns, graph/run.c claim_first_writers): the
 * first one overwrites the unzeroed buffer, any later writer adds. Each
 * case must give the true gradient, and the same one on a second backward
 * over a buffer that still holds the first one's result. */
#include <criterion/criterion.h>
#include <string.h>

#include "graph/internal.h"
#include "helpers.h"
#include "nabla/testing.h"
#include "ops/simd512.h"

typedef nb_node *(*act_fn)(nb_graph *, nb_node *);
static nb_node *mk_elu(nb_graph *g, nb_node *x) { return nb_elu(g, x, 0.7f); }
static nb_node *mk_leaky(nb_graph *g, nb_node *x) { return nb_leaky_relu(g, x, 0.2f); }
static nb_node *mk_rrelu(nb_graph *g, nb_node *x) { return nb_rrelu(g, x, 0.1f, 0.3f); }

static const act_fn acts[] = {nb_sigmoid, nb_tanh, nb_relu, mk_leaky, mk_elu, nb_selu, nb_gelu,
                              nb_swish,   nb_softplus, mk_rrelu, nb_softmax, nb_log_softmax};
enum { N_ACTS = sizeof acts / sizeof acts[0] };

/* x -> act -> sum(y·w): act is x's only writer, so it overwrites. */
static void only_writer(void) {
    for (int k = 0; k < N_ACTS; k++) {
        nb_graph *g = nb_graph_new();
        /* values away from relu's kink, so finite differences are fair */
        nb_tensor *x = t_tensor("x", 2, (int[]){5, 7}, 0.1f, 1.5f, 100 + (uint64_t)k);
        for (int i = 0; i < 35; i += 2) x->data[i] = -x->data[i];
        nb_node *y = acts[k](g, nb_param(g, x));
        nb_tensor *c;
        nb_node *loss = t_weighted_sum(g, y, &c, 200 + (uint64_t)k);
        t_ok(g);
        cr_assert(nb_forward(g, NB_TRAINING) == NB_OK);
        nb_backward(g, loss);
        t_ok(g);
        cr_assert(y->assign & 1u, "op %d (%s) did not claim its input's gradient", k, y->op->name);
        float first[35];
        memcpy(first, x->grad, sizeof first);
        /* the buffer is not zeroed before the next pass: an op that added
         * would double it */
        nb_backward(g, loss);
        for (int i = 0; i < 35; i++)
            cr_assert_eq(x->grad[i], first[i], "%s: grad[%d] %g then %g", y->op->name, i, (double)first[i],
                         (double)x->grad[i]);
        cr_log_info("%s", y->op->name);
        nb_assert_gradcheck(g, loss, 1e-2);
        nb_graph_free(g);
        nb_tensor_free(x), nb_tensor_free(c);
    }
}

/* x feeds the activation and a scale (before or after it in the graph), or
 * two activations: whichever writes x's gradient second must add. */
static void second_writer(void) {
    for (int k = 0; k < N_ACTS; k++)
        for (int order = 0; order < 3; order++) {
            nb_graph *g = nb_graph_new();
            nb_tensor *x = t_tensor("x", 2, (int[]){4, 6}, 0.1f, 1.5f, 300 + (uint64_t)k);
            for (int i = 1; i < 24; i += 2) x->data[i] = -x->data[i];
            nb_node *xn = nb_param(g, x), *a, *b;
            if (order == 0) { /* the scale comes last, so it writes first */
                a = acts[k](g, xn);
                b = nb_scale(g, xn, 0.5f);
            } else if (order == 1) { /* the activation writes first */
                b = nb_scale(g, xn, 0.5f);
                a = acts[k](g, xn);
            } else { /* two activations */
                b = acts[(k + 1) % N_ACTS](g, xn);
                a = acts[k](g, xn);
            }
            nb_tensor *ca, *cb;
            nb_node *loss = nb_add(g, t_weighted_sum(g, b, &cb, 400), t_weighted_sum(g, a, &ca, 500));
            t_ok(g);
            cr_assert(nb_forward(g, NB_TRAINING) == NB_OK);
            nb_backward(g, loss);
            t_ok(g);
            /* the later node in the graph runs its backward first */
            cr_assert((a->id > b->id ? a : b)->assign == (order == 0 ? 0u : 1u), "%s, order %d", a->op->name,
                      order);
            cr_assert_eq((a->id > b->id ? b : a)->assign, 0u, "%s, order %d", a->op->name, order);
            cr_log_info("%s, order %d", a->op->name, order);
            nb_assert_gradcheck(g, loss, 1e-2);
            nb_graph_free(g);
            nb_tensor_free(x), nb_tensor_free(ca), nb_tensor_free(cb);
        }
}

/* The activation's input is an op's output, not a parameter: its gradient
 * buffer is the graph's, also left unzeroed (here by a softmax before it,
 * whose backward then reads it). */
Test(act_first_writer, an_intermediate_gradient_is_overwritten_correctly) {
    for (int k = 0; k < N_ACTS; k++) {
        nb_graph *g = nb_graph_new();
        nb_tensor *x = t_tensor("x", 2, (int[]){4, 5}, 0.1f, 1.5f, 600 + (uint64_t)k);
        for (int i = 0; i < 20; i += 3) x->data[i] = -x->data[i];
        nb_node *h = nb_scale(g, nb_param(g, x), 2.0f);
        nb_node *y = acts[k](g, h);
        nb_tensor *c;
        nb_node *loss = t_weighted_sum(g, nb_softmax(g, y), &c, 602);
        t_ok(g);
        cr_assert(nb_forward(g, NB_TRAINING) == NB_OK);
        nb_backward(g, loss);
        cr_assert(y->assign & 1u, "%s", y->op->name);
        cr_log_info("%s", y->op->name);
        nb_assert_gradcheck(g, loss, 1e-2);
        nb_graph_free(g);
        nb_tensor_free(x), nb_tensor_free(c);
    }
}

Test(act_first_writer, the_only_writer_overwrites_and_a_second_backward_agrees) { only_writer(); }
Test(act_first_writer, a_second_writer_adds) { second_writer(); }

/* The same through the portable kernels, which CPUs without AVX-512 run
 * (each test is its own process, so the switch lasts for one test). */
#ifdef NB_HAVE_V512
Test(act_first_writer, portable_kernels_overwrite_and_add_as_told) {
    nb__v512_disabled = true;
    only_writer();
    second_writer();
}
#endif
