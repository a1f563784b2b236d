/* nabla/nn.h — layers and Sequential models, composed from the ops.
 *
 * A layer is described by an nb_layer_spec (what Keras calls a layer's
 * config) and owns its tensors: a Dense layer its kernel and bias, a batch
 * normalization its gamma, beta and moving statistics. Applying a layer to
 * a node adds its ops to that node's graph and returns the output node, so
 * one layer applied in two graphs (training and inference), or twice in one
 * graph (shared weights), uses the same tensors. Layers know nothing of
 * optimizers: they expose their tensors, their regularization penalty as a
 * graph node, and their max-norm constraint as a function to call after an
 * update.
 *
 * A model is a Sequential stack of layers with an input shape; for other
 * topologies (two inputs, two heads, a shared trunk) make layers with
 * nb_layer_new and apply them to whatever nodes you like.
 *
 * Names follow Keras: layers are "dense", "dense_1", ..., tensors
 * "dense/kernel", "dense/bias", "batch_normalization/gamma", "beta",
 * "moving_mean", "moving_variance", "dense/alpha" (a PReLU's slopes),
 * "normalization/mean", "normalization/variance".
 */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "graph.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nb_layer_kind {
    NB_LAYER_DENSE,
    NB_LAYER_BATCH_NORM,
    NB_LAYER_LAYER_NORM,
    NB_LAYER_DROPOUT,
    NB_LAYER_ALPHA_DROPOUT,
    NB_LAYER_ACTIVATION,
    NB_LAYER_FLATTEN,
    NB_LAYER_NORMALIZATION /* Keras's Normalization: (x - mean) / sqrt(variance) per
                              feature, statistics set with nb_layer_set_normalization */
} nb_layer_kind;

/* Keras's l1_l2: penalty = l1·sum|w| + l2·sum w². Zero means none. */
typedef struct nb_regularizer {
    float l1, l2;
} nb_regularizer;

typedef struct nb_layer_spec {
    nb_layer_kind kind;
    char name[48];          /* "" to be named by the model ("dense_2") */
    /* DENSE */
    int units;
    char kernel_init[64];   /* "" = glorot_uniform, Keras's default; any name of
                               nb_init_parse, "variance_scaling(2,fan_avg,uniform)" too */
    bool no_bias;           /* for a Dense followed by batch normalization */
    nb_regularizer kernel_reg;
    float max_norm;         /* > 0: after each update, weight vectors with an L2 norm
                               above max_norm are rescaled to it (w <- w·r/||w||) */
    int max_norm_axis;      /* the axis the norm runs over, as Keras's MaxNorm(axis):
                               0 (default) each unit's incoming weights (a kernel
                               column), 1 each input's outgoing weights (a row) */
    /* DENSE (optional activation) and ACTIVATION */
    char activation[16];    /* "" or "linear" = none; relu, leaky_relu, prelu, rrelu, elu, selu,
                               gelu, swish, tanh, sigmoid, softplus, softmax */
    float alpha;            /* leaky_relu slope (0 = 0.2, the book's) or elu alpha (0 = 1) */
    /* DROPOUT, ALPHA_DROPOUT */
    float rate;
    /* BATCH_NORM, LAYER_NORM */
    float momentum;         /* 0 = 0.99 */
    float epsilon;          /* 0 = 1e-3 */
    bool no_center, no_scale; /* leave out beta / gamma */
} nb_layer_spec;

/* Spec helpers for the common cases. */
nb_layer_spec nb_dense_spec(int units, const char *activation, const char *kernel_init);
nb_layer_spec nb_batch_norm_spec(void);
nb_layer_spec nb_dropout_spec(float rate);
nb_layer_spec nb_alpha_dropout_spec(float rate);
nb_layer_spec nb_activation_spec(const char *activation);

typedef struct nb_layer nb_layer; /* opaque */

/* Makes a layer for inputs of shape in_dims (without the batch dimension)
 * and initializes its tensors from rng. Returns NULL with nb_last_error()
 * set for a bad spec (unknown kind, activation or initializer, units < 1,
 * rate outside [0,1), a Dense on a rank > 1 input, ...). The caller owns
 * it (nb_layer_free) unless it is added to a model. */
nb_layer *nb_layer_new(const nb_layer_spec *spec, int rank, const int *in_dims, nb_rng *rng);
void nb_layer_free(nb_layer *l);

/* Adds the layer's ops after x in x's graph and returns the output node
 * (NULL, with the graph in error, on a shape mismatch). With mc_dropout,
 * the layer's dropout stays random in inference runs (MC dropout). */
nb_node *nb_layer_apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout);

const nb_layer_spec *nb_layer_spec_of(const nb_layer *l);
const char *nb_layer_name(const nb_layer *l);
/* The output shape (without the batch dimension). */
int nb_layer_output_dims(const nb_layer *l, int *dims);
/* The layer's tensors, in a fixed order (kernel, bias; gamma, beta,
 * moving_mean, moving_variance; alpha). Owned by the layer. */
int nb_layer_tensor_count(const nb_layer *l);
nb_tensor *nb_layer_tensor(const nb_layer *l, int i);
/* Freezes (false) or unfreezes the layer: its learned tensors get no
 * gradient and no update. Moving statistics are never trainable, and a
 * frozen batch normalization runs as in inference (its running statistics
 * stay as they are), as in Keras. Freeze before applying the layer to a
 * graph: a graph built earlier keeps the mode it was built with. */
void nb_layer_set_trainable(nb_layer *l, bool trainable);
bool nb_layer_trainable(const nb_layer *l);
/* The regularization penalty of the layer's weights as a scalar node in g,
 * or NULL when the layer has none. */
nb_node *nb_layer_penalty(nb_layer *l, nb_graph *g);
/* Applies the max-norm constraint, if any; call after each optimizer step. */
void nb_layer_constrain(nb_layer *l);
/* Sets a Normalization layer's statistics from per-feature means and
 * standard deviations (a zero deviation counts as 1, leaving the feature
 * centred but unscaled). They are read when the layer is applied to a
 * graph. Errors: not a Normalization layer, non-finite or negative values. */
nb_status nb_layer_set_normalization(nb_layer *l, const float *mean, const float *std);

/* ---- Sequential models ---- */

typedef struct nb_model nb_model; /* opaque */

/* An empty model for inputs of shape dims (without the batch dimension),
 * with seed for its initializers. NULL with nb_last_error() set on bad dims. */
nb_model *nb_model_new(int rank, const int *dims, uint64_t seed);
void nb_model_free(nb_model *m);

/* Appends a layer made from spec for the current output shape and returns
 * it (owned by the model). NULL with nb_last_error() set on a bad spec. */
nb_layer *nb_model_add(nb_model *m, const nb_layer_spec *spec);

int nb_model_layer_count(const nb_model *m);
nb_layer *nb_model_layer(const nb_model *m, int i);
int nb_model_input_dims(const nb_model *m, int *dims);
int nb_model_output_dims(const nb_model *m, int *dims);

/* Applies every layer in order to x; see nb_layer_apply. */
nb_node *nb_model_apply(nb_model *m, nb_graph *g, nb_node *x, bool mc_dropout);
/* The sum of the layers' penalties in g, or NULL when there are none. */
nb_node *nb_model_penalty(nb_model *m, nb_graph *g);
/* Applies every layer's max-norm constraint. */
void nb_model_constrain(nb_model *m);

/* All the model's tensors in layer order, trainable or not (the optimizer
 * skips frozen ones and moving statistics). The array is owned by the model
 * and valid until the next nb_model_add. */
int nb_model_tensors(const nb_model *m, nb_tensor *const **out);
/* Parameter counts: trainable (learned, not frozen) and the rest. */
void nb_model_count_params(const nb_model *m, long *trainable, long *non_trainable);
/* Prints a table like Keras's model.summary(): layer (type), output shape,
 * parameter count, then the totals. */
void nb_model_summary(const nb_model *m, FILE *out);

/* Saves the model in the safetensors format: every tensor as float32
 * little-endian, named "layer/tensor", in the model's tensor order, and in
 * "__metadata__" the strings format "nabla", nabla_version "1",
 * architecture (a JSON document: input shape, seed, each layer's Keras class
 * name, trainable flag and full spec) and weights_crc32 (a CRC-32 of the
 * architecture and the weights, so a corrupted file is refused on loading).
 * Python's safetensors reads the file. The write is atomic: a temporary
 * file "<path>.tmp.XXXXXX" beside path, fsync, rename over path (the new
 * file gets the usual 0666 & ~umask mode); a failure removes the temporary
 * and leaves any previous file at path untouched. NB_ERROR with
 * nb_last_error() naming the file: NULL arguments, a name that is not UTF-8,
 * two tensors with one name, a failed create, write, sync or rename. */
nb_status nb_model_save(const nb_model *m, const char *path);
/* Loads a model saved by nb_model_save: the same layers, names, specs,
 * trainable flags, seed and bit-identical tensors. The caller owns it
 * (nb_model_free). NULL with nb_last_error() naming the file and the
 * problem: missing, not safetensors, truncated or longer than its header
 * says, a header that is not JSON or lacks the nabla metadata, an unknown
 * layer kind or bad spec, a dtype other than F32, offsets out of range,
 * overlapping or leaving gaps, missing or extra tensors, wrong shapes, a
 * checksum mismatch. Never crashes on a malformed file. */
nb_model *nb_model_load(const char *path);
/* Copies the tensors of a safetensors file into m (transfer learning): the
 * file must hold exactly m's tensors, by name and shape, as F32, in any
 * order; nabla's metadata is not needed, but a weights_crc32 there is
 * checked. Only data is copied: m's layers and trainable flags stay. All or
 * nothing: on NB_ERROR (nb_last_error() as for nb_model_load) m is as it
 * was. */
nb_status nb_model_load_weights(nb_model *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
