/* nabla/graph.h — the computational graph: build once, replay every step.
 *
 * A graph holds nodes: inputs (fed each step), parameters and constants
 * (tensors owned outside the graph) and op results (made by the constructors
 * of nabla/ops.h). Nodes are added in topological order by construction, so
 * the forward pass runs them in creation order and the backward pass in
 * reverse, computing gradients only for nodes that lead to a trainable
 * parameter.
 *
 * Memory: all values, gradients and saved intermediates of op nodes come
 * from one arena the graph plans and allocates on its first run (for the
 * largest batch its inputs were declared with). Later runs allocate nothing.
 *
 * Errors (the cairo model): a user mistake — a shape mismatch, a bad
 * argument, a NULL node, a failed allocation, a non-finite value when
 * checking is on — puts the graph in an error state. Constructors then return
 * NULL and every later call on the graph does nothing and returns
 * NB_ERROR. Check nb_graph_status once, after building or after a step, and
 * read nb_graph_error for the message, which names the op and the shapes:
 *   "matmul: inner dimensions differ: [32,784] x [300,100]".
 */
#ifndef NABLA_GRAPH_H
#define NABLA_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_graph nb_graph;  /* opaque */
typedef struct nb_node nb_node;    /* opaque; owned by its graph */

typedef enum nb_status { NB_OK = 0, NB_ERROR = 1 } nb_status;

/* Training runs use batch statistics and random dropout masks; inference
 * runs use running statistics and no dropout (unless a dropout node was
 * made stochastic with nb_node_set_stochastic, for MC dropout). */
typedef enum nb_mode { NB_TRAINING = 0, NB_INFERENCE = 1 } nb_mode;

/* Makes an empty graph with seed 0. Returns NULL only if memory runs out
 * (nb_last_error says so). The caller frees it with nb_graph_free. */
nb_graph *nb_graph_new(void);

/* Frees the graph, its nodes and its arena; never the tensors its
 * parameters and constants point to. NULL is allowed. */
void nb_graph_free(nb_graph *g);

/* NB_OK, or NB_ERROR once anything has failed; the error is permanent. */
nb_status nb_graph_status(const nb_graph *g);

/* The first error's message, or "" when the graph is fine. Owned by the graph. */
const char *nb_graph_error(const nb_graph *g);

/* The kind of the first error (nabla/tensor.h): NB_ERR_NONE when the graph
 * is fine, NB_ERR_INVALID_ARGUMENT for a NULL graph or a mistake in
 * building or feeding it, NB_ERR_OUT_OF_MEMORY when its nodes or arena
 * could not be allocated, NB_ERR_NONFINITE for a NaN or infinity that
 * nb_graph_check_finite caught, NB_ERR_UNSUPPORTED for a node beyond
 * nabla's limits (more than 2^40 elements). */
nb_error_kind nb_graph_error_kind(const nb_graph *g);

/* Puts g in error with a printf-style message, unless it already is (the
 * first error wins); returns NB_ERROR. For code that builds on graphs
 * (layers, a user's model builders) to report its own mistakes the same way.
 * The error's kind is NB_ERR_INVALID_ARGUMENT. */
nb_status nb_graph_fail(nb_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Seeds every random op of the graph (dropout, rrelu). The same seed and the
 * same sequence of runs give bit-identical results, whatever the number of
 * threads. Also rewinds the step counter to 0. */
void nb_graph_set_seed(nb_graph *g, uint64_t seed);

/* Batch statistics shared between processes training together (data
 * parallelism, nabla/train.h's nb_fit_dist): with a sync set, every batch
 * normalization of the graph normalizes with the mean and variance of the
 * whole global batch, summing its per-feature sums through sum (the same
 * call on every process, in the same order), and its backward pass sums
 * its gradient sums the same way. share is this process's rows over the
 * global batch's, set before each training pass: each process's gradient
 * is of its own mean loss, and the shares weigh them into the global
 * batch's. Every process must run every pass (no process with no rows).
 * sync is borrowed; NULL turns it off. */
typedef struct nb_graph_sync {
    nb_status (*sum)(void *user, double *v, int n);
    void *user;
    double share;
} nb_graph_sync;
void nb_graph_set_sync(nb_graph *g, nb_graph_sync *sync);

/* Random ops (dropout, alpha dropout, rrelu) key each element by its place
 * in the batch; with an offset, as if `rows` rows came before this batch's
 * first. A process that runs its share of a global batch (data
 * parallelism) then draws the masks one process draws for those rows. 0 by
 * default; set before a forward pass. */
void nb_graph_set_row_offset(nb_graph *g, uint64_t rows);

/* Called on the thread that runs nb_backward, during the pass: with a
 * trainable tensor as soon as its gradient is complete (no op still to run
 * in this pass writes it), and with NULL after each op that completes none,
 * so that work started on earlier gradients can make progress. Data
 * parallelism starts summing gradients over processes here, overlapping
 * the sums with the rest of backward (nabla/train.h's nb_fit_dist). The
 * order of the calls depends on the graph only, so it is the same on every
 * process running the same graph; nb_graph_grad_order gives it ahead. A
 * tensor backward does not reach is not named. fn NULL removes the hook. */
typedef void (*nb_grad_ready_fn)(void *user, nb_tensor *t);
void nb_graph_on_grad_ready(nb_graph *g, nb_grad_ready_fn fn, void *user);

/* The trainable tensors whose gradients nb_backward(g, loss) computes, in
 * the order the hook above is called with them: up to max into out (out
 * may be NULL with max 0). Returns their count, or -1 with the graph's
 * error set (loss NULL or of another graph). */
int nb_graph_grad_order(nb_graph *g, nb_node *loss, nb_tensor **out, int max);

/* When on, every forward and backward pass scans each value and gradient it
 * writes, and the first NaN or infinity puts the graph in error naming the
 * node, e.g. "forward: non-finite value in node 'log#3' (op log) at index 5".
 * Off by default (it costs a pass over memory). */
void nb_graph_check_finite(nb_graph *g, bool on);

/* ---- leaves ---- */

/* Declares an input of the given shape, fed each step with nb_feed. Its
 * first dimension is the batch: dims[0] is the largest batch the graph will
 * see, and every run may feed any batch from 1 to that. rank >= 1. */
nb_node *nb_input(nb_graph *g, const char *name, int rank, const int *dims);

/* Adds a parameter: the graph reads t->data in the forward pass and, if
 * t->trainable, writes the gradient into t->grad (allocated here if NULL).
 * The tensor stays owned by the caller and must outlive the graph. Adding
 * the same tensor twice gives the same node. */
nb_node *nb_param(nb_graph *g, nb_tensor *t);

/* Adds a constant: like a parameter, but never gets a gradient. The tensor
 * stays owned by the caller and must outlive the graph. */
nb_node *nb_constant(nb_graph *g, nb_tensor *t);

/* Adds a rank-0 constant holding v, owned by the graph. */
nb_node *nb_scalar(nb_graph *g, float v);

/* ---- running ---- */

/* Points the input at batch rows of data (row-major, batch * the product of
 * the input's other dims floats). No copy: data must stay valid and unchanged
 * until the backward pass that follows the next forward pass has ended
 * (backward reads it: a weight's gradient is a product with its input). Errors: not an input, batch outside
 * [1, declared batch], NULL data. */
nb_status nb_feed(nb_graph *g, nb_node *input, const float *data, int batch);

/* Runs every node in creation order. The first run plans and allocates the
 * arena. Errors: an input not fed, inputs fed with different batch sizes,
 * a shape that no longer fits, an op's own runtime check (for example a
 * label out of range), a non-finite value when checking is on. */
nb_status nb_forward(nb_graph *g, nb_mode mode);

/* Backpropagates from loss (a node with one element) after a forward pass:
 * the gradient of loss with respect to every trainable parameter it depends
 * on is written to that parameter's tensor (overwritten, not accumulated
 * across calls); the graph's other trainable parameters get a zero
 * gradient. Ops that lead to no trainable parameter are skipped. */
nb_status nb_backward(nb_graph *g, nb_node *loss);

/* ---- nodes ---- */

/* The node's current value (after a forward pass), its gradient (after a
 * backward pass; NULL if the node gets none) and its current shape (the
 * batch dimension follows the last feed). Pointers are owned by the graph
 * and stay valid until the graph is freed or extended. */
const float *nb_node_value(const nb_node *n);
const float *nb_node_grad(const nb_node *n);
nb_shape nb_node_shape(const nb_node *n);
size_t nb_node_size(const nb_node *n);

/* The node's name: given at creation, or "<op>#<id>". */
const char *nb_node_name(const nb_node *n);
void nb_node_set_name(nb_node *n, const char *name);

/* The name of the node's op ("input", "param", "constant", "matmul", ...). */
const char *nb_node_op(const nb_node *n);

/* The tensor behind a parameter or constant node; NULL for other nodes. */
nb_tensor *nb_node_tensor(const nb_node *n);

/* Keeps a random node (dropout, alpha dropout) random in inference runs: the
 * mechanism of MC dropout. Errors: the node's op is not random. */
nb_status nb_node_set_stochastic(nb_node *n, bool on);

/* Makes the node run as in inference in training passes too: a batch
 * normalization normalizes with its running statistics and leaves them
 * alone, a dropout passes its input through (unless made stochastic).
 * Gradients still flow through it. What Keras does for a frozen layer. */
nb_status nb_node_force_inference(nb_node *n, bool on);

/* Number of nodes, and the i-th node in creation order (NULL if out of range). */
int nb_graph_node_count(const nb_graph *g);
nb_node *nb_graph_node(const nb_graph *g, int i);

/* Bytes the arena holds (0 before the first run). */
size_t nb_graph_arena_bytes(const nb_graph *g);

#ifdef __cplusplus
}
#endif
#endif
