/* nabla/ops.h — the differentiable ops, as node constructors.
 *
 * Each constructor adds one node to g and returns it, or returns NULL and
 * puts g in error (message naming the op and the shapes) when an input is
 * NULL or from another graph, the shapes do not fit, or an argument is out
 * of range. On a graph already in error it does nothing and returns NULL, so
 * a whole model can be built and checked once at the end.
 *
 * Shapes: the first dimension of anything computed from an input is the
 * batch and follows the batch fed at run time. "Feature axis" means the last
 * axis. Every op has a backward pass; gradients flow to every input that
 * leads to a trainable parameter.
 */
#ifndef NABLA_OPS_H
#define NABLA_OPS_H

#include <stdbool.h>

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- matmul (ops/matmul.c) ---- */

/* a: [M,K], b: [K,N] -> [M,N], through BLIS. */
nb_node *nb_matmul(nb_graph *g, nb_node *a, nb_node *b);
/* op(a)·op(b) where op transposes when the flag is set: with trans_a, a is
 * [K,M]; with trans_b, b is [N,K]. Transposes cost nothing (strides). */
nb_node *nb_matmul_t(nb_graph *g, nb_node *a, nb_node *b, bool trans_a, bool trans_b);

/* ---- elementwise arithmetic (ops/arith.c) ----
 * a and b have the same shape, or one of them broadcasts: its shape equals
 * the trailing dimensions of the other's (a bias [F] against [B,F]) or it
 * has one element. The result has the larger shape. */
nb_node *nb_add(nb_graph *g, nb_node *a, nb_node *b);
nb_node *nb_sub(nb_graph *g, nb_node *a, nb_node *b);
nb_node *nb_mul(nb_graph *g, nb_node *a, nb_node *b);
nb_node *nb_div(nb_graph *g, nb_node *a, nb_node *b);
/* s·x */
nb_node *nb_scale(nb_graph *g, nb_node *x, float s);

/* ---- reductions (ops/reduce.c) ---- */

/* Sum / mean of all elements -> rank 0. Accumulated in double. */
nb_node *nb_sum(nb_graph *g, nb_node *x);
nb_node *nb_mean(nb_graph *g, nb_node *x);
/* Sum / mean along one axis (negative counts from the end); the axis is removed. */
nb_node *nb_sum_axis(nb_graph *g, nb_node *x, int axis);
nb_node *nb_mean_axis(nb_graph *g, nb_node *x, int axis);

/* ---- shape (ops/shape.c) ---- */

/* A view with the same elements in a new shape (no copy). One dim may be -1
 * (inferred); the first dim should be -1 for batched tensors so the view
 * follows the batch. */
nb_node *nb_reshape(nb_graph *g, nb_node *x, int rank, const int *dims);
/* [B, d1, ..., dk] -> [B, d1*...*dk], a view. */
nb_node *nb_flatten(nb_graph *g, nb_node *x);
/* Concatenates n tensors along the feature axis; all other dims must agree. */
nb_node *nb_concat(nb_graph *g, int n, nb_node *const *xs);
/* Features [start, start+len) of x along the feature axis. */
nb_node *nb_slice(nb_graph *g, nb_node *x, int start, int len);

/* ---- activations (ops/activation.c) ----
 * Elementwise unless said otherwise. Formulas follow Keras. */
nb_node *nb_sigmoid(nb_graph *g, nb_node *x);
nb_node *nb_tanh(nb_graph *g, nb_node *x);
nb_node *nb_relu(nb_graph *g, nb_node *x);
/* x if x > 0 else alpha·x (Keras LeakyReLU default alpha 0.3; the book uses 0.2). */
nb_node *nb_leaky_relu(nb_graph *g, nb_node *x, float alpha);
/* x if x > 0 else alpha[f]·x with alpha a learned [F] vector over the feature axis. */
nb_node *nb_prelu(nb_graph *g, nb_node *x, nb_node *alpha);
/* Randomized leaky ReLU (PyTorch's RReLU: Keras has none): in training the
 * slope of each negative element is drawn uniformly from [lower, upper]; in
 * inference it is (lower+upper)/2. PyTorch's defaults are 1/8 and 1/3. */
nb_node *nb_rrelu(nb_graph *g, nb_node *x, float lower, float upper);
/* x if x > 0 else alpha·(exp(x)-1) (Keras default alpha 1). */
nb_node *nb_elu(nb_graph *g, nb_node *x, float alpha);
/* scale·elu(x, alpha) with the self-normalizing constants of Klambauer et al.
 * (alpha 1.6732632423543772, scale 1.0507009873554805). */
nb_node *nb_selu(nb_graph *g, nb_node *x);
/* x·Φ(x), exact (erf) form: Keras's default approximate=False. */
nb_node *nb_gelu(nb_graph *g, nb_node *x);
/* GELU with the tanh approximation, op "gelu_tanh": x/2·(1 + tanh(√(2/π)·(x +
 * 0.044715·x³))), as PyTorch's gelu(approximate="tanh") and Keras's
 * gelu(approximate=True). Computed as x·sigmoid(2u), which keeps its
 * relative precision in the left tail; the gradient is from x. */
nb_node *nb_gelu_tanh(nb_graph *g, nb_node *x);
/* x·sigmoid(x), also called SiLU. */
nb_node *nb_swish(nb_graph *g, nb_node *x);
/* log(1+exp(x)), computed without overflow. */
nb_node *nb_softplus(nb_graph *g, nb_node *x);
/* Along the feature axis, shifted by the row maximum for stability. */
nb_node *nb_softmax(nb_graph *g, nb_node *x);
nb_node *nb_log_softmax(nb_graph *g, nb_node *x);

/* ---- losses (ops/loss.c); each returns a rank-0 mean ---- */

/* Softmax cross-entropy of logits [B,C] against integer class labels [B]
 * (stored as floats 0..C-1), averaged over the batch; fused and computed
 * through log-sum-exp. A label that is not an integer in [0,C) is a runtime
 * error naming the row. Keras: SparseCategoricalCrossentropy(from_logits=True). */
nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels);
/* Binary cross-entropy of logits against targets in [0,1] of the same shape,
 * averaged over all elements; max(x,0) - x·t + log(1+exp(-|x|)). */
nb_node *nb_bce_with_logits(nb_graph *g, nb_node *logits, nb_node *targets);
/* Mean of (pred - target)^2 over all elements. */
nb_node *nb_mse(nb_graph *g, nb_node *pred, nb_node *target);
/* Mean Huber loss: 0.5·d^2 where |d| <= delta, else delta·(|d| - 0.5·delta)
 * (Keras default delta 1). */
nb_node *nb_huber(nb_graph *g, nb_node *pred, nb_node *target, float delta);

/* ---- normalization (ops/batchnorm.c, ops/layernorm.c) ---- */

/* Batch normalization over every axis but the feature axis (F features).
 * Training: normalizes with the batch mean and (biased) variance, and updates
 * running_mean/running_var (tensors [F], owned by the caller) as
 * r = momentum·r + (1-momentum)·batch_stat, with the batch's own (biased)
 * variance as in Keras 3. Inference, or a node made to run as in inference
 * (nb_node_force_inference: a frozen layer), normalizes with the running
 * statistics and leaves them alone.
 * y = gamma·(x-mean)/sqrt(var+eps) + beta; gamma and beta ([F] nodes) may be
 * NULL to leave scale or shift out. Keras defaults: momentum 0.99, eps 1e-3. */
nb_node *nb_batchnorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta,
                      nb_tensor *running_mean, nb_tensor *running_var,
                      float momentum, float eps);
/* Layer normalization over the feature axis of each row; gamma, beta [F] or
 * NULL. Keras default eps 1e-3. */
nb_node *nb_layernorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta, float eps);

/* ---- dropout (ops/dropout.c) ---- */

/* Inverted dropout: in training each element is zeroed with probability rate
 * and the survivors scaled by 1/(1-rate); identity in inference unless the
 * node is made stochastic. rate in [0,1). Masks depend only on the graph's
 * seed, the step and the element, never on the number of threads. */
nb_node *nb_dropout(nb_graph *g, nb_node *x, float rate);
/* Alpha dropout (Klambauer et al., as Keras's AlphaDropout): dropped elements
 * are set to SELU's negative saturation value and an affine correction keeps
 * the mean and variance of standardized inputs. rate in [0,1). */
nb_node *nb_alpha_dropout(nb_graph *g, nb_node *x, float rate);

/* ---- norms (ops/lpnorm.c); each returns rank 0, accumulated in double ---- */

/* sum |x| */
nb_node *nb_l1_norm(nb_graph *g, nb_node *x);
/* sqrt(sum x^2); its gradient at x = 0 is taken as 0. */
nb_node *nb_l2_norm(nb_graph *g, nb_node *x);
/* sum x^2 (the Keras l2 regularizer's penalty, before its factor). */
nb_node *nb_sum_squares(nb_graph *g, nb_node *x);

#ifdef __cplusplus
}
#endif
#endif
