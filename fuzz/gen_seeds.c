/* fuzz/gen_seeds.c — writes the small models of fuzz/corpus/model/, which
 * fuzz/make_corpus.py also turns into seeds for fuzz_json. Every layer kind
 * appears in one of them, so the fuzzer starts from files that load.
 * Built with the harnesses (not by default):
 *   meson compile -C build-fuzz fuzz_gen_seeds
 *   build-fuzz/fuzz/fuzz_gen_seeds fuzz/corpus/model
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

static int save(nb_model *m, const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!m || nb_model_save(m, path) != NB_OK) {
        fprintf(stderr, "gen_seeds: %s: %s\n", path, nb_last_error());
        nb_model_free(m);
        return 1;
    }
    nb_model_free(m);
    return 0;
}

static nb_model *add(nb_model *m, nb_layer_spec s) {
    if (m && !nb_model_add(m, &s)) {
        fprintf(stderr, "gen_seeds: %s\n", nb_last_error());
        nb_model_free(m);
        return NULL;
    }
    return m;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int bad = 0;

    /* the smallest: one Dense with a bias */
    nb_model *m = nb_model_new(1, (int[]){3}, 1);
    m = add(m, nb_dense_spec(2, NULL, NULL));
    bad |= save(m, dir, "dense.safetensors");

    /* images: Flatten, Dense without bias, batch norm, PReLU, dropout, Dense softmax */
    m = nb_model_new(2, (int[]){2, 3}, 7);
    m = add(m, (nb_layer_spec){.kind = NB_LAYER_FLATTEN});
    nb_layer_spec d = nb_dense_spec(4, NULL, "he_normal");
    d.no_bias = true;
    d.kernel_reg = (nb_regularizer){.l1 = 0.01f, .l2 = 0.001f};
    d.max_norm = 2;
    m = add(m, d);
    m = add(m, nb_batch_norm_spec());
    m = add(m, nb_activation_spec("prelu"));
    m = add(m, nb_dropout_spec(0.25f));
    m = add(m, nb_dense_spec(3, "softmax", "glorot_uniform"));
    bad |= save(m, dir, "flatten_bn_prelu.safetensors");

    /* SELU stack: Normalization, LeCun, alpha dropout, a frozen layer */
    m = nb_model_new(1, (int[]){4}, 42);
    nb_layer_spec norm = {.kind = NB_LAYER_NORMALIZATION};
    m = add(m, norm);
    if (m) {
        nb_layer *l = nb_model_layer(m, 0);
        nb_layer_set_normalization(l, (float[]){0.5f, -1, 2, 0}, (float[]){1, 2, 0, 0.25f});
    }
    m = add(m, nb_dense_spec(3, "selu", "lecun_normal"));
    m = add(m, nb_alpha_dropout_spec(0.1f));
    m = add(m, nb_dense_spec(2, "elu", "variance_scaling(2,fan_avg,uniform)"));
    if (m) nb_layer_set_trainable(nb_model_layer(m, 1), false);
    bad |= save(m, dir, "selu_norm.safetensors");

    /* layer norm (with and without gamma/beta), leaky ReLU, named layers */
    m = nb_model_new(1, (int[]){5}, 3);
    nb_layer_spec ln = {.kind = NB_LAYER_LAYER_NORM, .epsilon = 1e-5f};
    strcpy(ln.name, "ln");
    m = add(m, ln);
    nb_layer_spec lk = nb_dense_spec(2, "leaky_relu", "he_uniform");
    lk.alpha = 0.1f;
    strcpy(lk.name, "hidden");
    m = add(m, lk);
    nb_layer_spec ln2 = {.kind = NB_LAYER_LAYER_NORM, .no_center = true};
    m = add(m, ln2);
    m = add(m, nb_activation_spec("gelu"));
    bad |= save(m, dir, "layernorm.safetensors");

    /* no weights at all: the data section is empty */
    m = nb_model_new(3, (int[]){2, 2, 2}, 0);
    m = add(m, (nb_layer_spec){.kind = NB_LAYER_FLATTEN});
    m = add(m, nb_activation_spec("tanh"));
    bad |= save(m, dir, "no_weights.safetensors");

    /* functional: two inputs, every merge, a layer called twice, two outputs */
    m = nb_model_functional(9);
    nb_sym a = nb_model_input(m, "a", 1, (int[]){3}), b = nb_model_input(m, "b", 1, (int[]){3});
    nb_sym ha = nb_model_call(m, nb_dense_spec(3, "relu", NULL), a);
    nb_sym hb = nb_model_call_layer(m, nb_model_layer(m, 0), 1, &b); /* shared */
    nb_sym merged[5];
    const nb_layer_kind merges[] = {NB_LAYER_ADD, NB_LAYER_SUBTRACT, NB_LAYER_MULTIPLY, NB_LAYER_AVERAGE};
    for (int i = 0; i < 4; i++) merged[i] = nb_model_merge(m, merges[i], 2, (nb_sym[]){ha, hb});
    merged[4] = nb_model_merge(m, NB_LAYER_CONCATENATE, 4, merged);
    nb_model_output(m, "main", nb_model_call(m, nb_dense_spec(2, "softmax", NULL), merged[4]));
    nb_model_output(m, "aux", nb_model_call(m, nb_dense_spec(1, NULL, NULL), hb));
    if (nb_model_status(m) != NB_OK) {
        fprintf(stderr, "gen_seeds: %s\n", nb_model_error(m));
        nb_model_free(m);
        return 1;
    }
    bad |= save(m, dir, "functional.safetensors");
    return bad;
}
