/* nabla/nn.h — layers and Sequential models, composed from the ops.
 *
 * A layer is an instance of a layer class (Dense, BatchNormalization, ...,
 * or one registered at run time; see "Layer classes") made from the
 * class's config (nb_layer_spec is the one-struct front of the built-in
 * kinds), and owns its tensors: a Dense layer its kernel and bias, a batch
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

#include "custom.h"
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
    NB_LAYER_NORMALIZATION, /* Keras's Normalization: (x - mean) / sqrt(variance) per
                               feature, statistics set with nb_layer_set_normalization */
    /* merges of several inputs, made with nb_model_merge (not from a spec) */
    NB_LAYER_CONCATENATE,   /* along the last axis; the other dims must agree */
    NB_LAYER_ADD,           /* elementwise, all inputs of one shape */
    NB_LAYER_SUBTRACT,      /* exactly two: the first minus the second */
    NB_LAYER_MULTIPLY,
    NB_LAYER_AVERAGE,
    NB_LAYER_CUSTOM /* a layer of a class registered with nb_layer_class_register; made
                       with nb_layer_new_from_config, not from an nb_layer_spec */
} nb_layer_kind;

/* Keras's l1_l2: penalty = l1·sum|w| + l2·sum w². Zero means none. */
typedef struct nb_regularizer {
    float l1, l2;
} nb_regularizer;

/* nb_layer_spec is the compatibility front of the built-in kinds: one
 * struct for every kind, mapped field by field (by name) onto the kind's
 * own configuration (see "Layer classes" below). Fields a kind does not
 * have are ignored. NULL or "" strings mean the default. */
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
                               gelu, gelu_tanh, swish, tanh, sigmoid, softplus, softmax, or a registered
                               name (one of 16 bytes or more: use the class's config, whose
                               strings hold NB_FIELD_STRING_MAX - 1) */
    float alpha;            /* leaky_relu slope (0 = 0.2, the book's) or elu alpha (0 = 1) */
    /* DROPOUT, ALPHA_DROPOUT */
    float rate;
    /* BATCH_NORM, LAYER_NORM */
    float momentum;         /* 0 = 0.99 */
    float epsilon;          /* 0 = 1e-3 */
    bool no_center, no_scale; /* leave out beta / gamma */
} nb_layer_spec;

/* Spec helpers for the common cases; NULL strings mean "" (the default). A
 * string too long for its array is kept without its NUL, so that making
 * the layer fails saying so, rather than use a name cut short. */
nb_layer_spec nb_dense_spec(int units, const char *activation, const char *kernel_init);
nb_layer_spec nb_batch_norm_spec(void);
nb_layer_spec nb_dropout_spec(float rate);
nb_layer_spec nb_alpha_dropout_spec(float rate);
nb_layer_spec nb_activation_spec(const char *activation);

typedef struct nb_layer nb_layer; /* opaque */

/* Makes a layer of a built-in kind for inputs of shape in_dims (without
 * the batch dimension) and initializes its tensors from rng: the spec is
 * mapped onto the kind's config and made as nb_layer_new_from_config does.
 * Returns NULL with nb_last_error() set for a bad spec (unknown kind,
 * NB_LAYER_CUSTOM, activation or initializer, units < 1, rate outside
 * [0,1), a Dense on a rank > 1 input, ...). The caller owns it
 * (nb_layer_free) unless it is added to a model. */
nb_layer *nb_layer_new(const nb_layer_spec *spec, int rank, const int *in_dims, nb_rng *rng);
/* Lets go of the caller's hold on l: it is freed unless a model shares it
 * (nb_model_add_from), which then frees it with itself. NULL is allowed. */
void nb_layer_free(nb_layer *l);

/* Adds the layer's ops after x in x's graph and returns the output node
 * (NULL, with the graph in error, on a shape mismatch). With mc_dropout,
 * the layer's dropout stays random in inference runs (MC dropout). */
nb_node *nb_layer_apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout);
/* The same for a layer of n inputs (a merge; n = 1 is nb_layer_apply):
 * each x[i] must have the shape the layer was made for. */
nb_node *nb_layer_apply_n(nb_layer *l, nb_graph *g, int n, nb_node *const *x, bool mc_dropout);
/* How many inputs the layer was made for, and the shape of input i
 * (without the batch): its rank, 0 outside [0, count). */
int nb_layer_input_count(const nb_layer *l);
int nb_layer_input_dims_at(const nb_layer *l, int i, int *dims);

/* The layer's config as an nb_layer_spec (fields its kind lacks are zero;
 * a layer of a registered class has kind NB_LAYER_CUSTOM and only its
 * name). Owned by the layer. */
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
/* Trains the layer's tensors at multiplier times the optimizer's rate (and
 * schedule), as PyTorch's parameter groups: fine-tuning reused layers more
 * gently than a new head. Kept across fits, not saved. Errors: NULL l, a
 * multiplier not > 0 or not finite. */
nb_status nb_layer_set_lr_multiplier(nb_layer *l, float multiplier);
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

/* ---- Layer classes ----
 *
 * A layer kind is an nb_layer_class: a name, a configuration struct
 * described once by field descriptors (from which validation, the summary
 * and the saved JSON all come), and callbacks that make the layer's tensors
 * and add its ops to a graph. The built-in kinds are classes too
 * (nn/layer_*.c). A user registers a class at start-up and makes layers of
 * it with nb_layer_new_from_config or nb_model_add_layer; a model with such
 * layers saves, and loads wherever the class is registered under the same
 * name.
 *
 *   typedef struct { int units; char activation[NB_FIELD_STRING_MAX]; } my_config;
 *   static const nb_field my_fields[] = {
 *       {"units", NB_FIELD_INT, offsetof(my_config, units), .min = 1, .max = INT_MAX},
 *       {"activation", NB_FIELD_ACTIVATION, offsetof(my_config, activation)},
 *   };
 */

typedef enum nb_field_type {
    NB_FIELD_INT,         /* int */
    NB_FIELD_FLOAT,       /* float, always finite */
    NB_FIELD_BOOL,        /* bool */
    NB_FIELD_STRING,      /* char[NB_FIELD_STRING_MAX], UTF-8 */
    NB_FIELD_ACTIVATION,  /* a string: "" or the name of a registered activation */
    NB_FIELD_INITIALIZER  /* a string: "" or a name nb_init_parse knows */
} nb_field_type;

#define NB_FIELD_STRING_MAX 64

typedef struct nb_field {
    const char *name;   /* the JSON key; "a.b" is key b of the object under key a */
    nb_field_type type;
    size_t offset;      /* offsetof(the config struct, the field) */
    double min, max;    /* INT, FLOAT: the allowed range, when min < max */
    bool max_open;      /* the range excludes max ([0,1) for a dropout rate) */
} nb_field;

typedef struct nb_layer_class {
    const char *name;       /* the class name: JSON's class_name, summary's type ("Dense") */
    const char *base_name;  /* instances are named base, base_1, ... ("dense") */
    size_t config_size;     /* sizeof the config struct; all-zero bytes are its defaults */
    const nb_field *fields;
    int n_fields;
    /* Checks what the fields' ranges cannot (the input rank, fields that
     * depend on each other) and writes the output shape (without the batch).
     * Returns 0, or nonzero after writing a message into err (at most len
     * bytes; nabla prefixes the class name). NULL: any input, output shape =
     * input shape. */
    int (*shape)(const void *config, int rank, const int *in_dims, int *out_rank, int *out_dims, char *err,
                 size_t len);
    /* Makes and initializes the layer's tensors with nb_layer_add_tensor,
     * drawing from rng. NB_ERROR when one cannot be made (nb_last_error is
     * set by nb_layer_add_tensor). NULL: no tensors. */
    nb_status (*build)(nb_layer *l, nb_rng *rng);
    /* Adds the layer's ops after x (shape checked already) and returns the
     * output node; NULL with the graph in error. With mc_dropout, dropout
     * stays random in inference runs. Required. */
    nb_node *(*apply)(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout);
    /* Optional: the weights' penalty as a scalar node in g, or NULL. */
    nb_node *(*penalty)(nb_layer *l, nb_graph *g);
    /* Optional: a constraint applied after each optimizer step. */
    void (*constrain)(nb_layer *l);
    /* A merge takes 2 to max_inputs inputs (at most NB_LAYER_MAX_INPUTS)
     * through shape_n and apply_n instead of shape and apply; 0 or 1 means
     * one input. shape_n (NULL: every input must have the first one's
     * shape, which is the output's) and apply_n as shape and apply, over n
     * input shapes (without the batch) and nodes. */
    int max_inputs;
    int (*shape_n)(const void *config, int n, const nb_shape *in, nb_shape *out, char *err, size_t len);
    nb_node *(*apply_n)(nb_layer *l, nb_graph *g, int n, nb_node *const *x, bool mc_dropout);
} nb_layer_class;

#define NB_LAYER_MAX_INPUTS 16

/* Registers a layer class under cls->name. cls (and its fields) is
 * borrowed: it must outlive every use, a static const is usual. Register
 * at start-up, before any model is made or loaded, from one thread.
 * NB_ERROR with nb_last_error(): NULL cls, name or base_name, no apply (no
 * apply_n for a merge, max_inputs outside [0, NB_LAYER_MAX_INPUTS]), a name
 * already registered, a field with no name or an unknown type, a string
 * field that does not fit in config_size. */
nb_status nb_layer_class_register(const nb_layer_class *cls);
/* The class registered (or built in) under name, or NULL. */
const nb_layer_class *nb_layer_class_find(const char *name);
/* Every class, built-in ones first in nb_layer_kind's order, then the
 * registered ones in the order registered: i in [0, nb_layer_class_count()),
 * NULL outside. */
int nb_layer_class_count(void);
const nb_layer_class *nb_layer_class_at(int i);

/* Makes a layer of class cls named name (NULL or "" = cls->base_name) from
 * config (cls->config_size bytes, copied; NULL = all defaults) for inputs of
 * shape in_dims, and initializes its tensors from rng. The caller owns it
 * (nb_layer_free) unless it is added to a model. NULL with nb_last_error()
 * naming the class and the field: a value out of its range, an unknown
 * activation or initializer, a string without its NUL or not UTF-8, a name
 * of 48 bytes or more, the shape callback's own error. */
nb_layer *nb_layer_new_from_config(const nb_layer_class *cls, const char *name, const void *config, int rank,
                                   const int *in_dims, nb_rng *rng);
/* The layer's class and its config (owned by the layer; do not change it). */
const nb_layer_class *nb_layer_class_of(const nb_layer *l);
const void *nb_layer_config(const nb_layer *l);
/* The input shape (without the batch dimension). */
int nb_layer_input_dims(const nb_layer *l, int *dims);
/* Writes the config as "units=300, activation=relu" (every field, strings
 * quoted only when empty) into buf (at most len bytes, NUL-terminated).
 * Returns the length it needed, as snprintf does. */
int nb_layer_config_str(const nb_layer *l, char *buf, size_t len);

/* For a class's build callback: adds a zero-filled tensor named
 * "<layer>/<role>" (role at most 31 bytes), owned by the layer; a trainable
 * false tensor is never trained (moving statistics), whatever
 * nb_layer_set_trainable says. Tensors keep the order they are added in.
 * NULL with nb_last_error() set when it cannot be made (at most 6 per
 * layer, out of memory, more floats than a file being loaded holds). */
nb_tensor *nb_layer_add_tensor(nb_layer *l, const char *role, int rank, const int *dims, bool trainable);
/* The layer's tensor with that role ("kernel"), or NULL. */
nb_tensor *nb_layer_find_tensor(const nb_layer *l, const char *role);

/* ---- Activations ----
 * An activation is a name for a function that adds a node after x. The
 * built-in names are linear (or ""), relu, leaky_relu, prelu, rrelu, elu,
 * selu, gelu, gelu_tanh, swish, tanh, sigmoid, softplus and softmax. alpha is the
 * layer's "alpha" field: 0 means the activation's own default. */
typedef nb_node *(*nb_activation_fn)(nb_graph *g, nb_node *x, float alpha, void *user);

/* Registers fn under name (at most 63 bytes), for Dense and Activation
 * layers and any class with an NB_FIELD_ACTIVATION field; user is passed to
 * fn and borrowed. Register at start-up, from one thread. NB_ERROR with
 * nb_last_error(): NULL or empty name or fn, a name too long or already
 * registered (built-in names included). */
nb_status nb_activation_register(const char *name, nb_activation_fn fn, void *user);
/* Registers the elementwise custom op under op->name, applied as
 * nb_custom(g, op, 1, &x, NULL). op is borrowed. Errors as above, and a NULL
 * op or callback. */
nb_status nb_activation_register_custom(const nb_custom_op *op);
/* Registers the elementwise function op (the fast path of nabla/custom.h)
 * under op->name, applied as nb_elementwise(g, op, x, user); op and user
 * are borrowed. Errors as above, and a NULL op, f or df. */
nb_status nb_activation_register_elementwise(const nb_elementwise_op *op, void *user);
/* Whether name is "" or a built-in or registered activation. */
bool nb_activation_known(const char *name);
/* For a class's build callback: adds what the activation learns (a
 * PReLU's "alpha", one slope per output feature, starting at 0 as in
 * Keras); nothing for the others. NB_ERROR as nb_layer_add_tensor. */
nb_status nb_layer_add_activation_tensors(nb_layer *l, const char *activation);
/* Applies the named activation to x in g ("" and "linear" return x); a
 * PReLU uses the layer's "alpha" tensor. NULL with the graph in error for an
 * unknown name. */
nb_node *nb_layer_activate(nb_layer *l, nb_graph *g, nb_node *x, const char *activation, float alpha);

/* ---- Models ----
 *
 * A model is a graph of layer calls with named inputs and outputs. The
 * Sequential model is its one-line case: nb_model_new gives it one input,
 * each nb_model_add calls a new layer on the last output, and that is the
 * output. A functional model (Keras's functional API) is built call by
 * call from symbolic values, nb_sym, that stand for the nodes of the
 * model's graph before there is any data:
 *
 *   nb_model *m = nb_model_functional(42);
 *   nb_sym wide = nb_model_input(m, "wide", 1, (int[]){5});
 *   nb_sym deep = nb_model_input(m, "deep", 1, (int[]){6});
 *   nb_sym h = nb_model_call(m, nb_dense_spec(30, "relu", NULL), deep);
 *   nb_sym both = nb_model_merge(m, NB_LAYER_CONCATENATE, 2, (nb_sym[]){wide, h});
 *   nb_model_output(m, "main", nb_model_call(m, nb_dense_spec(1, NULL, NULL), both));
 *   nb_model_output(m, "aux", nb_model_call(m, nb_dense_spec(1, NULL, NULL), h));
 *   if (nb_model_status(m) != NB_OK) puts(nb_model_error(m));
 *
 * Errors stick to the model, as to a graph (cairo's model): a call that
 * fails returns NB_SYM_NONE, puts the model in error with a message (also
 * in nb_last_error()), and every later call on it does nothing and returns
 * NB_SYM_NONE; check nb_model_status once at the end. fit, save and the
 * other users of a model refuse one in error, with its message.
 *
 * A layer called twice (nb_model_call_layer with one of the model's own
 * layers) is shared: both calls use its tensors. A layer of another model
 * called in this one is shared between the two models, as nb_model_add_from
 * with shared does. The model's layers are its distinct layers, in the
 * order of their first call; its tensors are theirs, in that order. */

typedef struct nb_model nb_model; /* opaque */

/* A node of a model's graph: an input, or a layer call's output. */
typedef struct nb_sym {
    int id; /* the node's index in its model; NB_SYM_NONE.id (-1) after an error */
} nb_sym;

#define NB_SYM_NONE ((nb_sym){-1})
/* At most this many inputs and outputs per model. */
#define NB_MODEL_MAX_IO 16

/* An empty Sequential model for inputs of shape dims (without the batch dimension),
 * with seed for its initializers. Its input is named "input". NULL with
 * nb_last_error() set on bad dims. */
nb_model *nb_model_new(int rank, const int *dims, uint64_t seed);
/* An empty functional model, with seed for its initializers; add inputs
 * with nb_model_input. NULL when memory runs out. */
nb_model *nb_model_functional(uint64_t seed);
void nb_model_free(nb_model *m);

/* NB_OK, or NB_ERROR once a call on the model failed; nb_model_error gives
 * the first failure's message ("" when none). */
nb_status nb_model_status(const nb_model *m);
const char *nb_model_error(const nb_model *m);
/* The first failure's kind (nabla/tensor.h's nb_error_kind), NB_ERR_NONE when none. */
nb_error_kind nb_model_error_kind(const nb_model *m);

/* Adds an input named name (NULL or "": "input", "input_1", ...) of shape
 * dims (without the batch). Errors: a Sequential model (it has its
 * input), a bad shape, a name taken by another input or of 48 bytes or
 * more, more than NB_MODEL_MAX_IO inputs. */
nb_sym nb_model_input(nb_model *m, const char *name, int rank, const int *dims);
/* Makes a layer from spec for x's shape and calls it on x. The spec is
 * taken by value, so that the spec helpers read as Keras's layers:
 * nb_model_call(m, nb_dense_spec(300, "relu", NULL), x). Errors as
 * nb_model_add's, an x that is not a node of m. */
nb_sym nb_model_call(nb_model *m, nb_layer_spec spec, nb_sym x);
/* Makes a layer of class cls named name (NULL or "": automatic) from
 * config (NULL: defaults) for the shapes of x[0..n) and calls it on them
 * (n = 1 for most classes; 2 or more for a merge). */
nb_sym nb_model_call_class(nb_model *m, const nb_layer_class *cls, const char *name, const void *config, int n,
                           const nb_sym *x);
/* Calls an existing layer on x[0..n), whose shapes must be those the layer
 * was made for: one of m's layers (shared within m) or another's (shared
 * between models: m holds it until freed). Errors: shapes that differ, a
 * layer of another model whose name m uses for another layer. */
nb_sym nb_model_call_layer(nb_model *m, nb_layer *l, int n, const nb_sym *x);
/* A merge of x[0..n) (2 to NB_LAYER_MAX_INPUTS; Subtract exactly 2):
 * kind is NB_LAYER_CONCATENATE, NB_LAYER_ADD, NB_LAYER_SUBTRACT,
 * NB_LAYER_MULTIPLY or NB_LAYER_AVERAGE. */
nb_sym nb_model_merge(nb_model *m, nb_layer_kind kind, int n, const nb_sym *x);
/* Declares x an output named name (NULL or "": the name of the layer that
 * made it, as Keras). Outputs keep the order declared; a model with no
 * declared output has its last node as its only output. Errors: a name
 * taken, more than NB_MODEL_MAX_IO outputs, an input as an output, a
 * Sequential model. */
nb_status nb_model_output(nb_model *m, const char *name, nb_sym x);

/* Whether m was made by nb_model_new (nb_model_add appends to it). */
bool nb_model_is_sequential(const nb_model *m);
/* The node's shape (without the batch): its rank, 0 for a bad node. */
int nb_model_sym_dims(const nb_model *m, nb_sym x, int *dims);
/* The inputs and outputs: count, name, shape (rank; 0 outside the range). */
int nb_model_input_count(const nb_model *m);
const char *nb_model_input_name(const nb_model *m, int i);
int nb_model_input_dims_at(const nb_model *m, int i, int *dims);
int nb_model_output_count(const nb_model *m);
const char *nb_model_output_name(const nb_model *m, int i);
int nb_model_output_dims_at(const nb_model *m, int i, int *dims);
/* The layer that made output i (NULL for none). */
nb_layer *nb_model_output_layer(const nb_model *m, int i);

/* Sequential models: appends a layer made from spec for the current output
 * shape and returns it (owned by the model). NULL with nb_last_error() set
 * on a bad spec or a functional model (use nb_model_call). */
nb_layer *nb_model_add(nb_model *m, const nb_layer_spec *spec);

/* Appends a layer of class cls named name (NULL or "" = automatic, Keras
 * style) made from config (NULL = defaults), as nb_layer_new_from_config
 * does, and returns it (owned by the model). NULL with nb_last_error() set. */
nb_layer *nb_model_add_layer(nb_model *m, const nb_layer_class *cls, const char *name, const void *config);

/* Appends layer l (another model's, or one made by nb_layer_new*) to m,
 * whose output shape must be l's input shape. shared: m holds l itself, so
 * both train the same tensors and freezing it freezes it in both (Keras's
 * reuse of a layer object); l lives until its last holder frees it (the
 * caller's nb_layer_free or nb_model_free each let go of one hold). Not
 * shared: m gets a copy with its own tensors (same config, name, flags and
 * bits). Returns the layer in m. NULL with nb_last_error() set: NULL
 * arguments, a shape that does not fit, l in m already (shared), a layer
 * of that name in m, out of memory. Building a model from another's first
 * k layers is k such calls. */
nb_layer *nb_model_add_from(nb_model *m, nb_layer *l, bool shared);

/* A deep copy of m: the same layers (classes, configs, names, trainable
 * flags), graph, inputs and outputs, seed and initializer stream, and bit-identical
 * tensors of its own, so training one leaves the other unchanged. The
 * caller owns it (nb_model_free). NULL with nb_last_error() set: NULL m,
 * out of memory. */
nb_model *nb_model_clone(const nb_model *m);

/* The distinct layers, in the order of their first call. */
int nb_model_layer_count(const nb_model *m);
nb_layer *nb_model_layer(const nb_model *m, int i);
/* The layer named name, or NULL. */
nb_layer *nb_model_find_layer(const nb_model *m, const char *name);
/* The first input's and the first output's shapes. */
int nb_model_input_dims(const nb_model *m, int *dims);
int nb_model_output_dims(const nb_model *m, int *dims);

/* Adds the model's ops to g for inputs in[0..inputs) (nb_model_input_count
 * nodes, in the order of the inputs) and writes its outputs' nodes into
 * out (nb_model_output_count of them, in order); only the nodes the
 * outputs need are built. NB_ERROR with the graph in error (a model in
 * error, a shape mismatch). */
nb_status nb_model_apply_all(nb_model *m, nb_graph *g, nb_node *const *in, nb_node **out, bool mc_dropout);
/* The same, and layer_out[i] (nb_model_layer_count entries) gets the node
 * of layer i's first call, NULL when the outputs do not need it: to watch
 * the layers' activations and gradients in a loop of your own. */
nb_status nb_model_apply_traced(nb_model *m, nb_graph *g, nb_node *const *in, nb_node **out, nb_node **layer_out,
                                bool mc_dropout);
/* For a model of one input and one output: its output node for input x;
 * see nb_layer_apply. */
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
 * parameter count, and under each layer the config fields it sets (those
 * off their defaults, "units=300, activation=relu"), then the totals. */
void nb_model_summary(const nb_model *m, FILE *out);

/* Saves the model in the safetensors format: every tensor as float32
 * little-endian, named "layer/tensor", in the model's tensor order, and in
 * "__metadata__" the strings format "nabla", nabla_version "1",
 * architecture (a JSON document: input shape, seed, each layer's class
 * name, trainable flag and config, the class's fields by name; a seed
 * above 2^63-1 as a decimal string) and weights_crc32 (a CRC-32 of the
 * architecture and the weights, so a corrupted file is refused on loading).
 * Python's safetensors reads the file. The write is atomic: a temporary
 * file "<path>.tmp.XXXXXX" beside path, fsync, rename over path (the new
 * file gets the usual 0666 & ~umask mode); a failure removes the temporary
 * and leaves any previous file at path untouched. NB_ERROR with
 * nb_last_error() naming the file: NULL arguments, a name that is not UTF-8,
 * two tensors with one name, a failed create, write, sync or rename. The
 * JSON is jansson's (Debian libjansson-dev). */
nb_status nb_model_save(const nb_model *m, const char *path);
/* Loads a model saved by nb_model_save (by this nabla or an older one):
 * the same layers, names, configs, trainable flags, seed and bit-identical
 * tensors. The caller owns it
 * (nb_model_free). NULL with nb_last_error() naming the file and the
 * problem: missing, not safetensors, truncated or longer than its header
 * says, a header over 100 MB, not strict JSON (duplicate keys included) or
 * lacking the nabla metadata, a layer class or activation not registered
 * (the message names it), a config key the class lacks or a bad value,
 * over 10000 layers, a dtype other than F32, offsets out of range,
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

/* Options for loading tensors by name (nb_model_load_weights_with,
 * nb_tensors_load); all false is strict: the file must hold exactly the
 * tensors asked for, with their shapes. */
typedef struct nb_load_options {
    bool skip_missing;    /* a tensor the file lacks keeps its values */
    bool skip_mismatched; /* a tensor whose shape differs in the file keeps its values */
    bool skip_unexpected; /* the file's tensors that nothing asks for are ignored */
} nb_load_options;

typedef enum nb_load_result { NB_LOADED, NB_LOAD_MISSING, NB_LOAD_MISMATCHED } nb_load_result;

/* What a load did: counts, and for each tensor asked for (in the order
 * asked) what happened to it, in result when the caller gives an array of
 * that many entries (else NULL). Filled on success only. */
typedef struct nb_load_report {
    int loaded, missing, mismatched, unexpected;
    nb_load_result *result;
} nb_load_report;

/* nb_model_load_weights with options (NULL = strict) and an optional
 * report: transfer learning from a model whose head differs. When the
 * file holds a weights_crc32 and not exactly m's tensors, the checksum is
 * checked by loading the file as a whole model (nb_model_load), so its
 * layer classes must be registered. All or nothing: on NB_ERROR m is as it
 * was, with nb_last_error() as for nb_model_load_weights. */
nb_status nb_model_load_weights_with(nb_model *m, const char *path, const nb_load_options *options,
                                     nb_load_report *report);

/* ---- State dicts: any named tensors ---- */

/* Saves the n tensors as a safetensors file of F32 tensors keyed by their
 * names, with no nabla metadata, atomically as nb_model_save does (t and
 * the tensors are only read). NB_ERROR with nb_last_error() naming the
 * file: NULL arguments, n < 0, an empty, repeated or non-UTF-8 name, the
 * name "__metadata__", a failed create, write, sync or rename. */
nb_status nb_tensors_save(const char *path, int n, nb_tensor *const *t);
/* Copies into each of the n tensors the file's tensor of the same name
 * and shape, in any order, as nb_model_load_weights_with does (a file
 * with nabla's weights_crc32 is checked). All or nothing: on NB_ERROR the
 * tensors are as they were. */
nb_status nb_tensors_load(const char *path, int n, nb_tensor *const *t, const nb_load_options *options,
                          nb_load_report *report);

#ifdef __cplusplus
}
#endif
#endif
