/* nabla/tensor.h — float32 tensors that live outside any graph.
 *
 * A tensor is row-major, contiguous, of rank 0 to NB_MAX_RANK. Tensors made
 * here are what a graph's parameters and constants point to: a model owns its
 * parameter tensors, and any number of graphs may read (and train) them.
 */
#ifndef NABLA_TENSOR_H
#define NABLA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_MAX_RANK 4

/* A shape: rank and dimensions; dim[i] for i >= rank is unused. */
typedef struct nb_shape {
    int rank;
    int dim[NB_MAX_RANK];
} nb_shape;

/* A tensor. Read the fields freely; change only the contents of data (and
 * grad), never the pointers or the shape. data and grad are 64-byte aligned.
 * grad is NULL until the tensor is used as a trainable parameter of a graph;
 * a graph's backward pass then writes the gradient of its loss there. */
typedef struct nb_tensor {
    float *data;
    float *grad;
    nb_shape shape;
    size_t size;          /* number of elements: the product of the dims */
    bool trainable;       /* false: the tensor is frozen, graphs give it no gradient */
    char name[64];
    float lr_scale;       /* the optimizers multiply their learning rate by it for this
                             tensor (PyTorch's per-group lr); 0 means 1. Set with
                             nb_layer_set_lr_multiplier, or here. */
} nb_tensor;

/* Makes a zero-filled tensor of the given shape, trainable, unnamed.
 * Returns NULL if rank is outside [0, NB_MAX_RANK], a dimension is < 1, or
 * memory runs out; nb_last_error() then says which. The caller owns the
 * tensor and frees it with nb_tensor_free. */
nb_tensor *nb_tensor_new(int rank, const int *dims);

/* Frees the tensor, its data and its gradient. NULL is allowed. */
void nb_tensor_free(nb_tensor *t);

/* Sets the tensor's name (truncated to 63 bytes); used in messages, gradient
 * check reports and saved files. */
void nb_tensor_set_name(nb_tensor *t, const char *name);

/* Writes "[2,3]" into buf (at most len bytes, always terminated) and returns buf. */
char *nb_shape_str(const nb_shape *s, char *buf, size_t len);

/* Number of elements of a shape (1 for rank 0). */
size_t nb_shape_size(const nb_shape *s);

/* The message of the last failure of a function that has no graph to carry
 * it (nb_tensor_new, nb_graph_new, nb_rng_*): thread-local, "" if none. */
const char *nb_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
