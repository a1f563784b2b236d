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

/* What kind of failure an error is, so that a caller can react to it
 * without reading the message. Each failure sets a kind together with its
 * message: nb_last_error_kind for calls that have no graph, and
 * nb_graph_error_kind (nabla/graph.h) for a graph's sticky error. Returns
 * stay NB_ERROR or NULL; the kind says why. New kinds may be added at the
 * end: a switch over them should have a default. */
typedef enum nb_error_kind {
    /* No error: nothing has failed on this thread yet, or the graph is fine. */
    NB_ERR_NONE = 0,
    /* The caller passed something wrong: a NULL pointer, a setting
     * outside its range (a negative or NaN learning rate, a batch size of
     * 0), shapes that do not fit together, a node of another graph, a call
     * out of order. Also what nb_graph_fail reports, and the errors of parts
     * not yet converted to name a kind. Fix the call; retrying it unchanged
     * fails the same way. */
    NB_ERR_INVALID_ARGUMENT,
    /* An allocation failed. Nothing was half-done: free memory (smaller
     * batches, fewer threads, another model) and the same call may work. */
    NB_ERR_OUT_OF_MEMORY,
    /* The operating system refused a file operation: a file that is
     * missing or not readable, a folder or device where a file was
     * expected, a read, write, fsync or rename that failed (a full disk).
     * The message carries the system's reason. Check the path, the
     * permissions or the disk; a retry may work. */
    NB_ERR_IO,
    /* A file or stream was read but its content is wrong: a bad magic, a
     * truncated header or body, a failed checksum, trailing bytes, a field
     * that is not a number, files of a set that disagree. Fetch or write
     * the file again; reading it again fails the same way. */
    NB_ERR_CORRUPT,
    /* A NaN or an infinity where nabla refuses one: a value or gradient of
     * a graph whose finiteness checking is on (nb_graph_check_finite), a
     * field of a data file, a training run that diverged. The values, not
     * the call, are at fault: lower the learning rate, clip gradients, or
     * clean the data. */
    NB_ERR_NONFINITE,
    /* Well-formed, but beyond what this build of nabla handles: more than
     * 2^40 elements in a tensor, more examples than an int counts, a
     * layer class or activation that is not registered, a file format
     * version newer than the library. Upgrade, register the missing piece,
     * or make the problem smaller. */
    NB_ERR_UNSUPPORTED,
} nb_error_kind;

/* The kind of the failure nb_last_error describes: thread-local, set with
 * the message (and overwritten by the next failure on the thread), and
 * NB_ERR_NONE if none has failed. A success does not reset it, as it does
 * not reset the message. */
nb_error_kind nb_last_error_kind(void);

/* A short stable name for a kind: "none", "invalid_argument",
 * "out_of_memory", "io", "corrupt", "nonfinite", "unsupported"; "unknown"
 * for a value outside the enum. Static storage: never free it. */
const char *nb_error_kind_name(nb_error_kind kind);

#ifdef __cplusplus
}
#endif
#endif
