/* nn/internal.h — the inside of layers and models, shared by nn/ files. */
#ifndef NABLA_NN_INTERNAL_H
#define NABLA_NN_INTERNAL_H

#include "nabla/nn.h"

#define NB_LAYER_MAX_TENSORS 6

struct nb_layer {
    nb_layer_spec spec;
    int in_rank, in_dims[NB_MAX_RANK];
    int out_rank, out_dims[NB_MAX_RANK];
    /* roles, each NULL when the layer has none; tensors[] lists them in order */
    nb_tensor *kernel, *bias, *gamma, *beta, *moving_mean, *moving_var, *alpha, *mean, *variance;
    nb_tensor *inv_std;   /* Normalization: derived from variance at apply time, not saved */
    nb_tensor *tensors[NB_LAYER_MAX_TENSORS];
    int n_tensors;
    bool trainable;
};

struct nb_model {
    int in_rank, in_dims[NB_MAX_RANK];
    uint64_t seed;
    nb_rng rng;
    nb_layer **layers;
    int n_layers, cap_layers;
    nb_tensor **tensors; /* every layer's tensors, in order */
    int n_tensors;
};

/* The Keras class name of a layer kind ("Dense", "BatchNormalization") and
 * the base of its instance names ("dense", "batch_normalization"). */
const char *nb__layer_class(nb_layer_kind kind);
const char *nb__layer_base_name(nb_layer_kind kind);

/* Names the layer's tensors "<layer name>/<role>" after a rename. */
void nb__layer_name_tensors(nb_layer *l);

/* Rebuilds m->tensors from its layers; -1 if memory runs out. */
int nb__model_collect_tensors(nb_model *m);

#endif
