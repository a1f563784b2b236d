/* nn/save.c — a model's file: its architecture as JSON and its tensors, in
 * a safetensors container (nn/safetensors.h). The metadata holds
 *   format         "nabla"
 *   nabla_version  "1"
 *   architecture   a JSON document (as a string): {"class_name":"Sequential",
 *                  "seed":7,"input_shape":[28,28],"layers":[{"class_name":
 *                  "Dense","trainable":true,"config":{"name":"dense",
 *                  "units":300,...}}]}; each layer's config is its class's
 *                  fields (nabla/nn.h's nb_field), a field "a.b" as key b of
 *                  object a
 *   weights_crc32  CRC-32 (zlib's) of the architecture string followed by
 *                  the tensors' bytes in the model's tensor order, as 8
 *                  lowercase hex digits
 * so that Python's safetensors, or anything else that reads the format,
 * reads the weights, and nabla rebuilds the model from the file alone.
 *
 * The checksum is not part of the format; it is there because a flipped bit
 * in a weight, or in a float of the architecture, would otherwise load
 * without complaint. It covers the tensors in model order rather than file
 * order, so a tool that rewrites the file with its tensors in another order
 * (Python's safetensors sorts them) keeps it valid.
 *
 * Files written before layer classes held every nb_layer_spec field for
 * every kind; a kind ignores those keys it lacks (nb__spec_key), and refuses
 * any other key it does not know. A seed above 2^63−1 is written as a
 * decimal string, which jansson's 64-bit signed integers cannot hold.
 */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "graph/internal.h"
#include "nn/internal.h"
#include "nn/safetensors.h"

#define FORMAT_VERSION "1"
/* Adding a layer checks its name against the others: a corrupt file must
 * not make that quadratic work take minutes. */
#define MAX_LAYERS 10000

/* ---- writing the architecture ---- */

/* v with the fewest digits that read back to the same float (9 at most),
 * as a JSON real (dumped with JSON_REAL_PRECISION(9), which then prints
 * those digits); NaN and the infinities, which JSON lacks, as the strings
 * "NaN", "Infinity" and "-Infinity" (Python's spellings). */
static json_t *float_json(float v) {
    if (isnan(v)) return json_string("NaN");
    if (isinf(v)) return json_string(v > 0 ? "Infinity" : "-Infinity");
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return json_real(strtod(buf, NULL));
}

/* Sets key (maybe "a.b": key b of object a, made when missing) to v, which
 * it takes; false when memory runs out. */
static bool set_path(json_t *obj, const char *key, json_t *v) {
    const char *dot = strchr(key, '.');
    if (!v) return false;
    if (!dot) return json_object_set_new(obj, key, v) == 0;
    char head[NB_FIELD_STRING_MAX];
    snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
    json_t *sub = json_object_get(obj, head);
    if (!sub) {
        sub = json_object();
        if (!sub || json_object_set_new(obj, head, sub) != 0) {
            json_decref(v);
            return false;
        }
    }
    return set_path(sub, dot + 1, v);
}

static json_t *config_json(const nb_layer *l) {
    json_t *cfg = json_object();
    bool ok = cfg && json_object_set_new(cfg, "name", json_string(l->name)) == 0;
    for (int i = 0; ok && i < l->cls->n_fields; i++) {
        const nb_field *f = &l->cls->fields[i];
        const char *p = (const char *)l->config + f->offset;
        json_t *v;
        switch (f->type) {
        case NB_FIELD_INT: v = json_integer(*(const int *)p); break;
        case NB_FIELD_FLOAT: v = float_json(*(const float *)p); break;
        case NB_FIELD_BOOL: v = json_boolean(*(const bool *)p); break;
        default: v = json_string(p); break;
        }
        ok = set_path(cfg, f->name, v);
    }
    if (!ok) json_decref(cfg);
    return ok ? cfg : NULL;
}

static json_t *shape_json(const nb_shape *sh) {
    json_t *a = json_array();
    for (int i = 0; a && i < sh->rank; i++)
        if (json_array_append_new(a, json_integer(sh->dim[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *layer_json(const nb_layer *l, bool with_inputs) {
    json_t *entry = json_object(), *cfg = config_json(l), *shapes = with_inputs ? json_array() : NULL;
    bool ok = entry && cfg && (!with_inputs || shapes) &&
              json_object_set_new(entry, "class_name", json_string(l->cls->name)) == 0 &&
              json_object_set_new(entry, "trainable", json_boolean(l->trainable)) == 0 &&
              json_object_set(entry, "config", cfg) == 0;
    for (int k = 0; ok && with_inputs && k < l->n_inputs; k++)
        ok = json_array_append_new(shapes, shape_json(&l->in_shapes[k])) == 0;
    if (ok && with_inputs) ok = json_object_set(entry, "input_shapes", shapes) == 0;
    json_decref(cfg);
    json_decref(shapes);
    if (!ok) json_decref(entry);
    return ok ? entry : NULL;
}

/* A functional model's graph: its inputs, layers (with the shapes they
 * take), nodes in topological order ({"input": k} or {"layer": i,
 * "inputs": [node, ...]}) and outputs ({"name", "node"}). */
static bool graph_json(const nb_model *m, json_t *a) {
    json_t *inputs = json_array(), *nodes = json_array(), *outputs = json_array();
    bool ok = inputs && nodes && outputs;
    for (int k = 0; ok && k < m->n_inputs; k++) {
        json_t *in = json_object();
        ok = in && json_object_set_new(in, "name", json_string(m->inputs[k].name)) == 0 &&
             json_object_set_new(in, "shape", shape_json(&m->nodes[m->inputs[k].node].shape)) == 0 &&
             json_array_append(inputs, in) == 0;
        json_decref(in);
    }
    for (int i = 0; ok && i < m->n_nodes; i++) {
        const nb__mnode *d = &m->nodes[i];
        json_t *node = json_object(), *from = json_array();
        int input = -1;
        for (int k = 0; k < m->n_inputs; k++)
            if (m->inputs[k].node == i) input = k;
        ok = node && from;
        if (ok && d->layer < 0) ok = json_object_set_new(node, "input", json_integer(input)) == 0;
        for (int k = 0; ok && d->layer >= 0 && k < d->n_in; k++) ok = json_array_append_new(from, json_integer(d->in[k])) == 0;
        if (ok && d->layer >= 0)
            ok = json_object_set_new(node, "layer", json_integer(d->layer)) == 0 &&
                 json_object_set(node, "inputs", from) == 0;
        ok = ok && json_array_append(nodes, node) == 0;
        json_decref(node);
        json_decref(from);
    }
    for (int k = 0; ok && k < m->n_outputs; k++) {
        json_t *o = json_object();
        ok = o && json_object_set_new(o, "name", json_string(m->outputs[k].name)) == 0 &&
             json_object_set_new(o, "node", json_integer(m->outputs[k].node)) == 0 &&
             json_array_append(outputs, o) == 0;
        json_decref(o);
    }
    ok = ok && json_object_set(a, "inputs", inputs) == 0 && json_object_set(a, "nodes", nodes) == 0 &&
         json_object_set(a, "outputs", outputs) == 0;
    json_decref(inputs);
    json_decref(nodes);
    json_decref(outputs);
    return ok;
}

static char *architecture(const nb_model *m) {
    json_t *a = json_object(), *layers = json_array();
    bool ok = a && layers;
    char seed[24];
    snprintf(seed, sizeof seed, "%" PRIu64, m->seed);
    if (ok)
        ok = json_object_set_new(a, "class_name", json_string(m->sequential ? "Sequential" : "Functional")) == 0 &&
             json_object_set_new(a, "seed", m->seed <= INT64_MAX ? json_integer((json_int_t)m->seed)
                                                                 : json_string(seed)) == 0;
    if (ok && m->sequential) {
        nb_shape in = {.rank = m->in_rank};
        memcpy(in.dim, m->in_dims, sizeof m->in_dims);
        ok = json_object_set_new(a, "input_shape", shape_json(&in)) == 0;
    }
    for (int i = 0; ok && i < m->n_layers; i++) ok = json_array_append_new(layers, layer_json(m->layers[i], !m->sequential)) == 0;
    ok = ok && json_object_set(a, "layers", layers) == 0;
    if (ok && !m->sequential) ok = graph_json(m, a);
    char *text = ok ? json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(a);
    json_decref(layers);
    return text;
}

nb_status nb_model_save(const nb_model *m, const char *path) {
    const char *op = "model save";
    if (!m || !path || !path[0]) return nb__st_fail(op, path, "%s", !m ? "model is NULL" : "no path"), NB_ERROR;
    if (m->status != NB_OK) return nb__st_fail(op, path, "the model is in error: %s", m->error), NB_ERROR;
    /* names go into JSON, which must be UTF-8 (a name is any bytes) */
    for (int i = 0; i < m->n_layers; i++)
        if (!nb__utf8_valid(m->layers[i]->name, strlen(m->layers[i]->name)))
            return nb__st_fail(op, path, "layer %d has a name that is not valid UTF-8", i), NB_ERROR;
    char *arch = architecture(m);
    if (!arch) return nb__st_fail_kind(NB_ERR_OUT_OF_MEMORY, op, path, "out of memory"), NB_ERROR;
    uint32_t crc = nb__crc_tensors(nb__crc_bytes(0, arch, strlen(arch)), m->tensors, m->n_tensors);
    char crc_hex[16];
    snprintf(crc_hex, sizeof crc_hex, "%08" PRIx32, crc);
    const char *keys[] = {"format", "nabla_version", "architecture", "weights_crc32"};
    const char *values[] = {"nabla", FORMAT_VERSION, arch, crc_hex};
    bool ok = nb__st_write(op, path, keys, values, 4, m->tensors, m->n_tensors);
    free(arch);
    return ok ? NB_OK : NB_ERROR;
}

/* ---- reading the architecture ---- */

typedef struct reader {
    const char *op, *path;
    size_t layer;
} reader;

#define BAD(...) nb__st_fail(r->op, r->path, __VA_ARGS__)
#define BADK(kind, ...) nb__st_fail_kind(kind, r->op, r->path, __VA_ARGS__)

static bool read_field(const reader *r, const nb_field *f, const json_t *v, void *config) {
    char *p = (char *)config + f->offset;
    switch (f->type) {
    case NB_FIELD_INT:
        if (!json_is_integer(v) || json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX)
            return BAD("layer %zu: %s is not an integer", r->layer, f->name);
        *(int *)p = (int)json_integer_value(v);
        return true;
    case NB_FIELD_FLOAT: {
        float x;
        const char *s = json_string_value(v);
        if (s && !strcmp(s, "NaN")) x = NAN;
        else if (s && !strcmp(s, "Infinity")) x = INFINITY;
        else if (s && !strcmp(s, "-Infinity")) x = -INFINITY;
        /* 0x1.ffffffp127 is half an ulp past FLT_MAX: the smallest that rounds to infinity */
        else if (json_is_number(v) && fabs(json_number_value(v)) < 0x1.ffffffp127) x = (float)json_number_value(v);
        else return BAD("layer %zu: %s is not a float", r->layer, f->name);
        memcpy(p, &x, sizeof x);
        return true;
    }
    case NB_FIELD_BOOL:
        if (!json_is_boolean(v)) return BAD("layer %zu: %s is not true or false", r->layer, f->name);
        *(bool *)p = json_is_true(v);
        return true;
    default:
        if (!json_is_string(v)) return BAD("layer %zu: %s is not a string", r->layer, f->name);
        if (json_string_length(v) >= NB_FIELD_STRING_MAX)
            return BAD("layer %zu: %s \"%.40s...\" is longer than %d bytes", r->layer, f->name, json_string_value(v),
                       NB_FIELD_STRING_MAX - 1);
        memcpy(p, json_string_value(v), json_string_length(v) + 1);
        return true;
    }
}

/* The keys of obj (under prefix "a." for object a) into config. */
static bool read_config(const reader *r, const nb_layer_class *cls, const json_t *obj, const char *prefix,
                        void *config) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        char full[2 * NB_FIELD_STRING_MAX];
        snprintf(full, sizeof full, "%s%s", prefix, key);
        if (!prefix[0] && strcmp(key, "name") == 0) continue;
        const nb_field *f = nb__class_field(cls, full);
        if (f) {
            if (!read_field(r, f, v, config)) return false;
        } else if (json_is_object(v) && !prefix[0] && strlen(key) < NB_FIELD_STRING_MAX) {
            char sub[NB_FIELD_STRING_MAX + 1];
            snprintf(sub, sizeof sub, "%s.", key);
            bool has = false; /* a class field under this object? */
            for (int i = 0; i < cls->n_fields; i++) has = has || strncmp(cls->fields[i].name, sub, strlen(sub)) == 0;
            if (has && !read_config(r, cls, v, sub, config)) return false;
            if (!has && !nb__spec_key(key)) return BAD("layer %zu: %s has no field \"%.40s\"", r->layer, cls->name, key);
        } else if (!nb__spec_key(full)) {
            return BAD("layer %zu: %s has no field \"%.40s\"", r->layer, cls->name, full);
        }
    }
    return true;
}

static bool read_seed(const reader *r, const json_t *seed, uint64_t *out) {
    *out = 0;
    if (!seed) return true;
    if (json_is_integer(seed) && json_integer_value(seed) >= 0) {
        *out = (uint64_t)json_integer_value(seed);
        return true;
    }
    const char *s = json_string_value(seed);
    size_t n = s ? strlen(s) : 0;
    bool digits = n > 0 && n <= 20;
    for (size_t i = 0; digits && i < n; i++) digits = s[i] >= '0' && s[i] <= '9';
    if (digits) {
        unsigned long long v = strtoull(s, NULL, 10);
        char back[24];
        snprintf(back, sizeof back, "%llu", v);
        if (strcmp(back, s) == 0) { /* no overflow, no leading zeros */
            *out = v;
            return true;
        }
    }
    return BAD("the architecture's seed is not an unsigned 64-bit integer");
}

/* Makes the layer l describes for inputs in[0..n) and appends it to m's
 * layers; false with the error set. */
static bool read_layer(reader *r, nb_model *m, const json_t *l, int n, const nb_shape *in, uint64_t data_len) {
    const json_t *lc = json_object_get(l, "class_name"), *cfg = json_object_get(l, "config"),
                 *tr = json_object_get(l, "trainable"), *name = json_object_get(cfg, "name");
    if (!json_is_string(lc) || !json_is_object(cfg)) return BAD("layer %zu has no class_name or config", r->layer);
    const nb_layer_class *cls = nb_layer_class_find(json_string_value(lc));
    if (!cls)
        return BADK(NB_ERR_UNSUPPORTED, "layer %zu has unknown kind \"%.40s\" (a class not registered with nb_layer_class_register)",
                   r->layer, json_string_value(lc));
    if (tr && !json_is_boolean(tr)) return BAD("layer %zu: trainable is not true or false", r->layer);
    if (name && (!json_is_string(name) || json_string_length(name) >= NB_LAYER_NAME_MAX))
        return BAD("layer %zu: name is not a string of at most %d bytes", r->layer, NB_LAYER_NAME_MAX - 1);
    const char *lname = name ? json_string_value(name) : "";
    void *config = calloc(1, cls->config_size ? cls->config_size : 1);
    if (!config) return BADK(NB_ERR_OUT_OF_MEMORY, "out of memory");
    bool ok = read_config(r, cls, cfg, "", config);
    if (ok) {
        /* a corrupt size must not allocate gigabytes: the layer's tensors
         * must fit in the floats of the file not claimed by earlier layers */
        uint64_t have = 0;
        for (int t = 0; t < m->n_tensors; t++) have += m->tensors[t]->size;
        uint64_t left = data_len / 4 > have ? data_len / 4 - have : 0;
        bool over;
        nb_layer *layer = nb__layer_make_n(cls, lname, config, n, in, &m->rng, left, &over);
        if (!layer && over)
            ok = BAD("layer %zu (\"%s\") needs more weights than the file's %" PRIu64 " bytes of data", r->layer,
                     lname[0] ? lname : cls->base_name, data_len);
        else if (!layer)
            ok = BAD("layer %zu (\"%s\"): %s", r->layer, lname[0] ? lname : cls->base_name, nb_last_error());
        else if (!(layer = nb__model_append(m, layer, lname[0] != '\0')))
            ok = BAD("layer %zu: %s", r->layer, nb_last_error());
        else if (tr && !json_is_true(tr))
            nb_layer_set_trainable(layer, false);
    }
    free(config);
    return ok;
}

/* A shape of 1 to NB_MAX_RANK - 1 sizes in [1, 2^31). */
static bool read_shape(const reader *r, const json_t *a, nb_shape *out, const char *what) {
    if (!json_is_array(a) || json_array_size(a) < 1 || json_array_size(a) > NB_MAX_RANK - 1)
        return BAD("%s is not a list of 1 to %d sizes", what, NB_MAX_RANK - 1);
    out->rank = (int)json_array_size(a);
    for (int d = 0; d < out->rank; d++) {
        json_t *x = json_array_get(a, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > INT32_MAX)
            return BAD("%s has a bad size", what);
        out->dim[d] = (int)json_integer_value(x);
    }
    return true;
}

/* A Sequential model's layers, each on the last one's output. */
static bool read_sequential(reader *r, nb_model *m, const json_t *layers, uint64_t data_len) {
    for (r->layer = 0; r->layer < json_array_size(layers); r->layer++) {
        int at = m->n_nodes - 1;
        if (!read_layer(r, m, json_array_get(layers, r->layer), 1, &m->nodes[at].shape, data_len)) return false;
        const nb_layer *l = m->layers[m->n_layers - 1];
        nb_shape out = {.rank = l->out_rank};
        memcpy(out.dim, l->out_dims, sizeof out.dim);
        if (nb__model_node(m, m->n_layers - 1, 1, &at, &out) < 0) return BADK(NB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return true;
}

/* An integer in [0, below), or -1. */
static long index_in(const json_t *v, long below) {
    return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < below ? (long)json_integer_value(v)
                                                                                              : -1;
}

/* A functional model's inputs, layers, nodes and outputs (see graph_json). */
static bool read_functional(reader *r, nb_model *m, const json_t *arch, const json_t *layers, uint64_t data_len) {
    const json_t *inputs = json_object_get(arch, "inputs"), *nodes = json_object_get(arch, "nodes"),
                 *outputs = json_object_get(arch, "outputs");
    if (!json_is_array(inputs) || json_array_size(inputs) < 1 || json_array_size(inputs) > NB_MODEL_MAX_IO)
        return BAD("the architecture has no list of 1 to %d inputs", NB_MODEL_MAX_IO);
    if (!json_is_array(nodes) || json_array_size(nodes) > 2 * MAX_LAYERS)
        return BAD("the architecture has no list of at most %d nodes", 2 * MAX_LAYERS);
    if (!json_is_array(outputs) || json_array_size(outputs) > NB_MODEL_MAX_IO)
        return BAD("the architecture has no list of at most %d outputs", NB_MODEL_MAX_IO);
    /* layers are made for the shapes they take, then called in node order */
    for (r->layer = 0; r->layer < json_array_size(layers); r->layer++) {
        const json_t *shapes = json_object_get(json_array_get(layers, r->layer), "input_shapes");
        nb_shape in[NB_LAYER_MAX_INPUTS];
        if (!json_is_array(shapes) || json_array_size(shapes) < 1 || json_array_size(shapes) > NB_LAYER_MAX_INPUTS)
            return BAD("layer %zu has no list of 1 to %d input_shapes", r->layer, NB_LAYER_MAX_INPUTS);
        for (size_t k = 0; k < json_array_size(shapes); k++)
            if (!read_shape(r, json_array_get(shapes, k), &in[k], "a layer's input shape")) return false;
        if (!read_layer(r, m, json_array_get(layers, r->layer), (int)json_array_size(shapes), in, data_len))
            return false;
    }
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        const json_t *node = json_array_get(nodes, i), *input = json_object_get(node, "input"),
                     *layer = json_object_get(node, "layer"), *from = json_object_get(node, "inputs");
        if (input) { /* inputs come in their own order */
            const json_t *in = json_array_get(inputs, (size_t)m->n_inputs);
            nb_shape sh;
            if (index_in(input, NB_MODEL_MAX_IO) != m->n_inputs || json_object_size(node) != 1 || !in)
                return BAD("node %zu: not input %d, the next of the %zu inputs", i, m->n_inputs, json_array_size(inputs));
            const json_t *name = json_object_get(in, "name");
            if (!json_is_string(name) || !read_shape(r, json_object_get(in, "shape"), &sh, "an input's shape"))
                return json_is_string(name) ? false : BAD("input %d has no name", m->n_inputs);
            if (nb_model_input(m, json_string_value(name), sh.rank, sh.dim).id < 0)
                return BAD("input %d: %s", m->n_inputs, nb_model_error(m));
            continue;
        }
        const long li = index_in(layer, m->n_layers);
        int ids[NB_LAYER_MAX_INPUTS], n = (int)json_array_size(from);
        if (li < 0 || !json_is_array(from) || n < 1 || n > NB_LAYER_MAX_INPUTS || json_object_size(node) != 2)
            return BAD("node %zu: not {\"input\": k} nor {\"layer\": i, \"inputs\": [...]} of the file's layers", i);
        for (int k = 0; k < n; k++)
            if ((ids[k] = (int)index_in(json_array_get(from, (size_t)k), (long)i)) < 0)
                return BAD("node %zu: input %d is not an earlier node", i, k);
        nb_sym x[NB_LAYER_MAX_INPUTS];
        for (int k = 0; k < n; k++) x[k].id = ids[k];
        if (nb_model_call_layer(m, m->layers[li], n, x).id < 0) return BAD("node %zu: %s", i, nb_model_error(m));
    }
    if ((size_t)m->n_inputs != json_array_size(inputs))
        return BAD("%zu inputs are listed, %d are nodes", json_array_size(inputs), m->n_inputs);
    for (int i = 0; i < m->n_layers; i++) {
        bool called = false;
        for (int k = 0; !called && k < m->n_nodes; k++) called = m->nodes[k].layer == i;
        if (!called) return BAD("layer %d ('%s') is never called", i, m->layers[i]->name);
    }
    for (size_t k = 0; k < json_array_size(outputs); k++) {
        const json_t *o = json_array_get(outputs, k), *name = json_object_get(o, "name");
        const long node = index_in(json_object_get(o, "node"), m->n_nodes);
        if (!json_is_string(name) || node < 0) return BAD("output %zu has no name or node", k);
        if (nb_model_output(m, json_string_value(name), (nb_sym){(int)node}) != NB_OK)
            return BAD("output %zu: %s", k, nb_model_error(m));
    }
    return true;
}

/* The model the architecture describes, its weights freshly initialized
 * (from the saved seed, so exactly as they were before training). */
static nb_model *build_model(reader *r, const char *arch_text, uint64_t data_len) {
    if (!nb__json_small_enough(arch_text, strlen(arch_text))) {
        BAD("the architecture holds over %d JSON values: not a model nabla wrote", NB_JSON_VALUES_MAX);
        return NULL;
    }
    json_error_t err;
    json_t *arch = json_loads(arch_text, JSON_REJECT_DUPLICATES, &err);
    if (!arch) {
        BAD("the architecture is not valid JSON (byte %d: %s)%s", err.position, err.text,
            strstr(err.text, "too big integer") ? "; an integer above 2^63-1 (a seed?) is written as a string" : "");
        return NULL;
    }
    nb_model *m = NULL;
    json_t *cls = json_object_get(arch, "class_name"), *layers = json_object_get(arch, "layers");
    const char *kind = json_string_value(cls);
    const bool functional = kind && strcmp(kind, "Functional") == 0;
    nb_shape in;
    uint64_t seed = 0;
    bool ok = true;
    if (!kind || (strcmp(kind, "Sequential") != 0 && !functional))
        ok = BAD("the architecture is neither a Sequential nor a Functional model");
    else if (!read_seed(r, json_object_get(arch, "seed"), &seed))
        ok = false;
    else if (!functional && !read_shape(r, json_object_get(arch, "input_shape"), &in, "the architecture's input_shape"))
        ok = false;
    else if (!json_is_array(layers))
        ok = BAD("the architecture has no list of layers");
    else if (json_array_size(layers) > MAX_LAYERS)
        ok = BADK(NB_ERR_UNSUPPORTED, "the architecture lists %zu layers; nabla loads at most %d", json_array_size(layers), MAX_LAYERS);
    if (ok) {
        m = functional ? nb_model_functional(seed) : nb_model_new(in.rank, in.dim, seed);
        if (!m) ok = BAD("%s", nb_last_error());
    }
    if (ok) ok = functional ? read_functional(r, m, arch, layers, data_len) : read_sequential(r, m, layers, data_len);
    json_decref(arch);
    if (!ok) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}

/* ---- tensors ---- */

/* Reads each matched tensor into dst[i] and checks the checksum when the
 * file has one. */
static bool read_data(const reader *r, nb_st_file *s, nb_st_entry **match, int n, float **dst, const char *arch,
                      bool *crc_bad) {
    if (crc_bad) *crc_bad = false;
    uint32_t crc = arch ? nb__crc_bytes(0, arch, strlen(arch)) : 0;
    for (int i = 0; i < n; i++)
        if (!nb__st_read(s, match[i], dst[i], &crc)) return false;
    const char *want = nb__st_meta(s, "weights_crc32");
    if (want) {
        char got[16];
        snprintf(got, sizeof got, "%08" PRIx32, crc);
        if (strcmp(want, got) != 0 && crc_bad) *crc_bad = true;
        if (strcmp(want, got) != 0)
            return BAD("checksum mismatch (weights_crc32 says %.16s, the contents give %s): the file is corrupt", want,
                       got);
    }
    return true;
}

/* Pairs t[i] with its entry (match[i], NULL when skipped) as the options
 * allow, filling the report's counts and results. */
static bool match_by_name(const reader *r, nb_st_file *s, nb_tensor *const *t, int n, const nb_load_options *o,
                          nb_st_entry **match, nb_load_report *rep) {
    /* a whole model's file must hold its own tensors; tensors asked for by
     * a caller that the file lacks are the caller's mismatch */
    const nb_error_kind kind = strcmp(r->op, "model load") == 0 ? NB_ERR_CORRUPT : NB_ERR_INVALID_ARGUMENT;
    for (int i = 0; i < n; i++) {
        nb_st_entry *e = nb__st_find(s, t[i]->name);
        nb_load_result res = NB_LOADED;
        if (!e) {
            if (!o->skip_missing) return BADK(kind, "tensor \"%s\" is missing", t[i]->name);
            res = NB_LOAD_MISSING;
        } else if (e->used) {
            return BADK(NB_ERR_INVALID_ARGUMENT, "two of the tensors to load are named \"%s\"", t[i]->name);
        } else {
            e->used = true;
            bool same = e->rank == t[i]->shape.rank;
            for (int d = 0; same && d < e->rank; d++) same = e->dims[d] == t[i]->shape.dim[d];
            if (!same && !o->skip_mismatched) {
                char want[NB_SHAPE_STR_LEN], got[NB_SHAPE_STR_LEN];
                nb_shape fs = {.rank = e->rank};
                memcpy(fs.dim, e->dims, sizeof e->dims);
                nb_shape_str(&fs, got, sizeof got);
                nb_shape_str(&t[i]->shape, want, sizeof want);
                return BADK(kind, "tensor \"%s\" has shape %s in the file, the model's is %s", t[i]->name, got, want);
            }
            if (!same) res = NB_LOAD_MISMATCHED;
        }
        match[i] = res == NB_LOADED ? e : NULL;
        if (rep->result) rep->result[i] = res;
        rep->loaded += res == NB_LOADED;
        rep->missing += res == NB_LOAD_MISSING;
        rep->mismatched += res == NB_LOAD_MISMATCHED;
    }
    for (size_t i = 0; i < s->n_entries; i++)
        if (!s->entries[i].used) {
            if (!o->skip_unexpected) return BADK(kind, "unexpected tensor \"%.64s\"", s->entries[i].name);
            rep->unexpected++;
        }
    return true;
}

/* ---- loading ---- */

nb_model *nb_model_load(const char *path) {
    reader rd = {"model load", path, 0}, *r = &rd;
    nb_st_file s;
    if (!nb__st_open(&s, r->op, path)) return NULL;
    nb_model *m = NULL;
    nb_st_entry **match = NULL;
    float **dst = NULL;
    const char *format = nb__st_meta(&s, "format"), *version = nb__st_meta(&s, "nabla_version"),
               *arch = nb__st_meta(&s, "architecture");
    bool ok = true;
    if (!s.meta) ok = BAD("no __metadata__: not saved by nabla (nb_model_load_weights reads the weights)");
    else if (!format) ok = BAD("no format in __metadata__");
    else if (strcmp(format, "nabla") != 0) ok = BAD("format is \"%.20s\", not \"nabla\"", format);
    else if (!version) ok = BAD("no nabla_version in __metadata__");
    else if (strcmp(version, FORMAT_VERSION) != 0)
        ok = BADK(NB_ERR_UNSUPPORTED, "nabla_version is \"%.20s\"; this nabla reads version " FORMAT_VERSION, version);
    else if (!arch) ok = BAD("no architecture in __metadata__");
    else if (!nb__st_meta(&s, "weights_crc32")) ok = BAD("no weights_crc32 in __metadata__");
    if (ok) ok = (m = build_model(r, arch, s.data_len)) != NULL;
    if (ok) {
        match = calloc((size_t)m->n_tensors + 1, sizeof *match);
        dst = calloc((size_t)m->n_tensors + 1, sizeof *dst);
        if (!match || !dst) ok = BADK(NB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    nb_load_options strict = {0};
    nb_load_report rep = {0};
    if (ok) ok = match_by_name(r, &s, m->tensors, m->n_tensors, &strict, match, &rep);
    if (ok) {
        for (int i = 0; i < m->n_tensors; i++) dst[i] = m->tensors[i]->data; /* a fresh model: fill in place */
        ok = read_data(r, &s, match, m->n_tensors, dst, arch, NULL);
    }
    free(match);
    free(dst);
    nb__st_close(&s);
    if (!ok) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}

/* ---- loading tensors by name ---- */

/* The checksum covers a nabla model's tensors in its own order: for any
 * other selection, load the file as the model it is and copy from that. */
static bool read_through_model(const reader *r, nb_tensor *const *t, int n, nb_st_entry **match, float **dst) {
    nb_model *src = nb_model_load(r->path);
    if (!src) return false; /* nb_last_error names the file and the problem */
    for (int i = 0; i < n; i++) {
        if (!match[i]) continue;
        const nb_tensor *from = NULL;
        for (int k = 0; !from && k < src->n_tensors; k++)
            if (strcmp(src->tensors[k]->name, t[i]->name) == 0) from = src->tensors[k];
        if (!from) { /* the file holds a tensor its own architecture lacks: load would have refused it */
            nb_model_free(src);
            return BAD("tensor \"%s\" is not part of the file's model", t[i]->name);
        }
        memcpy(dst[i], from->data, from->size * sizeof(float));
    }
    nb_model_free(src);
    return true;
}

static nb_status load_by_name(const char *op, const char *path, int n, nb_tensor *const *t,
                              const nb_load_options *options, nb_load_report *report) {
    reader rd = {op, path, 0}, *r = &rd;
    if (!path || n < 0 || (n > 0 && !t)) return BAD("%s", !path ? "no path" : "no tensors"), NB_ERROR;
    for (int i = 0; i < n; i++)
        if (!t[i]) return BAD("tensor %d is NULL", i), NB_ERROR;
    nb_load_options o = options ? *options : (nb_load_options){0};
    nb_load_report rep = {.result = report ? report->result : NULL};
    nb_st_file s;
    if (!nb__st_open(&s, r->op, path)) return NB_ERROR;
    /* match and dst: one slot per tensor (NULL when skipped); m2 and d2:
     * the loaded ones only, in order, for read_data */
    nb_st_entry **match = calloc((size_t)n + 1, sizeof *match), **m2 = calloc((size_t)n + 1, sizeof *m2);
    float **dst = calloc((size_t)n + 1, sizeof *dst), **d2 = calloc((size_t)n + 1, sizeof *d2);
    float *stage = NULL;
    bool ok = match && m2 && dst && d2 ? match_by_name(r, &s, t, n, &o, match, &rep) : BADK(NB_ERR_OUT_OF_MEMORY, "out of memory");
    /* read everything aside first: a corrupt file must leave the tensors as they were */
    if (ok) {
        size_t total = 0;
        for (int i = 0; i < n; i++) total += match[i] ? t[i]->size : 0;
        stage = malloc((total ? total : 1) * sizeof *stage);
        if (!stage) ok = BADK(NB_ERR_OUT_OF_MEMORY, "out of memory for %zu floats", total);
        for (size_t i = 0, at = 0; ok && i < (size_t)n; i++)
            if (match[i]) dst[i] = stage + at, at += t[i]->size;
    }
    if (ok && ((rep.loaded == n && rep.unexpected == 0) || !nb__st_meta(&s, "weights_crc32"))) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (match[i]) m2[k] = match[i], d2[k] = dst[i], k++;
        bool crc_bad;
        ok = read_data(r, &s, m2, k, d2, nb__st_meta(&s, "architecture"), &crc_bad);
        /* the checksum follows the saving model's order, which tensors
         * given in another order miss: ask the model itself */
        if (crc_bad) ok = read_through_model(r, t, n, match, dst);
    } else if (ok) {
        ok = read_through_model(r, t, n, match, dst);
    }
    if (ok)
        for (int i = 0; i < n; i++)
            if (match[i]) memcpy(t[i]->data, dst[i], t[i]->size * sizeof(float));
    if (ok && report) *report = rep;
    free(stage);
    free(match);
    free(m2);
    free(dst);
    free(d2);
    nb__st_close(&s);
    return ok ? NB_OK : NB_ERROR;
}

nb_status nb_model_load_weights(nb_model *m, const char *path) {
    return nb_model_load_weights_with(m, path, NULL, NULL);
}

nb_status nb_model_load_weights_with(nb_model *m, const char *path, const nb_load_options *options,
                                     nb_load_report *report) {
    if (!m) return nb__st_fail("model load weights", path, "model is NULL"), NB_ERROR;
    return load_by_name("model load weights", path, m->n_tensors, m->tensors, options, report);
}

nb_status nb_tensors_load(const char *path, int n, nb_tensor *const *t, const nb_load_options *options,
                          nb_load_report *report) {
    return load_by_name("tensors load", path, n, t, options, report);
}

nb_status nb_tensors_save(const char *path, int n, nb_tensor *const *t) {
    const char *op = "tensors save";
    if (!path || !path[0] || n < 0 || (n > 0 && !t))
        return nb__st_fail(op, path, "%s", !path || !path[0] ? "no path" : "no tensors"), NB_ERROR;
    for (int i = 0; i < n; i++)
        if (!t[i]) return nb__st_fail(op, path, "tensor %d is NULL", i), NB_ERROR;
    return nb__st_write(op, path, NULL, NULL, 0, t, n) ? NB_OK : NB_ERROR;
}
