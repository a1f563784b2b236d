/* nn/internal.h — the inside of layers and models, shared by nn/ files. */
#ifndef NABLA_NN_INTERNAL_H
#define NABLA_NN_INTERNAL_H

#include "nabla/nn.h"

#define NB_LAYER_MAX_TENSORS 6
#define NB_LAYER_NAME_MAX 48 /* as nb_layer_spec's name */
#define NB_ROLE_MAX 32

struct nb_layer {
    const nb_layer_class *cls;
    void *config;  /* cls->config_size bytes, owned */
    char name[NB_LAYER_NAME_MAX];
    nb_layer_spec spec; /* nb_layer_spec_of's view, refreshed from config */
    int in_rank, in_dims[NB_MAX_RANK]; /* the first input's shape */
    int n_inputs;                      /* 1, or a merge's count */
    nb_shape in_shapes[NB_LAYER_MAX_INPUTS];
    int out_rank, out_dims[NB_MAX_RANK];
    nb_tensor *tensors[NB_LAYER_MAX_TENSORS];
    char roles[NB_LAYER_MAX_TENSORS][NB_ROLE_MAX];
    bool fixed[NB_LAYER_MAX_TENSORS]; /* never trainable (moving statistics) */
    int n_tensors;
    nb_tensor *scratch;  /* a built-in's working tensor, not saved (Normalization's 1/std) */
    bool trainable;
    int refs; /* the caller's or a model's, one each: a layer shared by models lives until the last lets go */
    /* while a model is loaded: the floats its file holds, so a corrupt size
     * is refused before it is allocated (UINT64_MAX = no limit) */
    uint64_t float_budget, floats_made;
    bool over_budget;
};

/* A node of a model's graph: an input (layer -1) or a layer call. */
typedef struct nb__mnode {
    int layer;                    /* index into the model's layers, -1 for an input */
    int n_in;
    int in[NB_LAYER_MAX_INPUTS];  /* earlier nodes: the graph is in topological order */
    nb_shape shape;               /* the output's, without the batch */
} nb__mnode;

typedef struct nb__mport { /* a named input or output */
    int node;
    char name[NB_LAYER_NAME_MAX];
} nb__mport;

struct nb_model {
    int in_rank, in_dims[NB_MAX_RANK]; /* the first input's shape */
    uint64_t seed;
    nb_rng rng;
    bool sequential;
    nb_layer **layers; /* distinct, in the order of their first call */
    int n_layers, cap_layers;
    nb__mnode *nodes;
    int n_nodes, cap_nodes;
    nb__mport inputs[NB_MODEL_MAX_IO], outputs[NB_MODEL_MAX_IO];
    int n_inputs, n_outputs; /* no output declared: the last node is the output */
    nb_tensor **tensors; /* every layer's tensors, in order */
    int n_tensors;
    nb_status status;
    nb_error_kind error_kind;
    char error[512];
};

/* The built-in classes, one per file nn/layer_*.c; nb__builtin_class
 * indexes them by kind (NULL for NB_LAYER_CUSTOM and anything past it). */
extern const nb_layer_class nb__dense_class, nb__batch_norm_class, nb__layer_norm_class, nb__dropout_class,
    nb__alpha_dropout_class, nb__activation_class, nb__flatten_class, nb__normalization_class,
    nb__concatenate_class, nb__add_class, nb__subtract_class, nb__multiply_class, nb__average_class;
const nb_layer_class *nb__builtin_class(nb_layer_kind kind);
nb_layer_kind nb__class_kind(const nb_layer_class *cls);

/* nb_layer_new_from_config with a limit on the floats its tensors may hold
 * (UINT64_MAX = none); *over_budget says whether that limit is what failed. */
nb_layer *nb__layer_make(const nb_layer_class *cls, const char *name, const void *config, int rank,
                         const int *in_dims, nb_rng *rng, uint64_t float_budget, bool *over_budget);

/* nb__layer_make for n inputs of shapes in (without the batch). */
nb_layer *nb__layer_make_n(const nb_layer_class *cls, const char *name, const void *config, int n,
                           const nb_shape *in, nb_rng *rng, uint64_t float_budget, bool *over_budget);

/* Names the layer's tensors "<layer name>/<role>" after a rename. */
void nb__layer_name_tensors(nb_layer *l);
/* Renames the layer (name fits: checked by the caller). */
void nb__layer_rename(nb_layer *l, const char *name);

/* A field's value in a config, and the field of cls named name (NULL). */
const nb_field *nb__class_field(const nb_layer_class *cls, const char *name);
/* Checks one field's value in config; false with nb_last_error naming the
 * class and the field. */
bool nb__field_check(const nb_layer_class *cls, const nb_field *f, const void *config);

/* Whether name is a key of the nb_layer_spec front ("kernel_reg" for its
 * object): files from before layer classes held all of them for every kind. */
bool nb__spec_key(const char *name);

/* nb_layer_config_str, with set_only the fields off their defaults only. */
int nb__config_str(const nb_layer *l, char *buf, size_t len, bool set_only);

/* A built-in's working tensor (not saved, not listed). */
nb_tensor *nb__layer_scratch(nb_layer *l, int rank, const int *dims);

/* Rebuilds m->tensors from its layers; -1 if memory runs out. */
int nb__model_collect_tensors(nb_model *m);
/* Adds a made layer to m's layers, naming it when name is empty; frees it
 * (lets go of one hold) and returns NULL on a clash of names or out of
 * memory. Its index is m->n_layers - 1. */
nb_layer *nb__model_append(nb_model *m, nb_layer *l, bool named);
/* Adds a node calling layer index `layer` (-1: an input of shape *shape)
 * on nodes in[0..n); its index, or -1 when memory runs out (nb_last_error
 * set). Shapes are the caller's to check. */
int nb__model_node(nb_model *m, int layer, int n, const int *in, const nb_shape *shape);
/* The model's output nodes (the last node when none was declared): count. */
int nb__model_output_nodes(const nb_model *m, int *nodes);
/* Puts m in error with the message of nb_last_error(), once. */
void nb__model_fail(nb_model *m);

#endif
