/* nn/layer.c — what every layer shares: the class registry, configs
 * described by field descriptors (checks, the nb_layer_spec front, text),
 * tensors, applying, freezing, penalties and constraints. Each kind lives
 * in its own nn/layer_*.c. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "nabla/init.h"
#include "nabla/ops.h"
#include "nn/internal.h"
#include "nn/safetensors.h"

/* ---- the registry ---- */

/* In nb_layer_kind's order: a kind is its index here. */
static const nb_layer_class *const builtins[] = {
    &nb__dense_class,   &nb__batch_norm_class, &nb__layer_norm_class, &nb__dropout_class,
    &nb__alpha_dropout_class, &nb__activation_class, &nb__flatten_class, &nb__normalization_class,
    &nb__concatenate_class, &nb__add_class, &nb__subtract_class, &nb__multiply_class, &nb__average_class,
};
#define N_BUILTINS (int)(sizeof builtins / sizeof builtins[0])

static const nb_layer_class **registered;
static int n_registered, cap_registered;

const nb_layer_class *nb__builtin_class(nb_layer_kind kind) {
    return (unsigned)kind < (unsigned)N_BUILTINS ? builtins[kind] : NULL;
}

nb_layer_kind nb__class_kind(const nb_layer_class *cls) {
    for (int k = 0; k < N_BUILTINS; k++)
        if (builtins[k] == cls) return (nb_layer_kind)k;
    return NB_LAYER_CUSTOM;
}

const nb_layer_class *nb_layer_class_find(const char *name) {
    if (!name) return NULL;
    for (int k = 0; k < N_BUILTINS; k++)
        if (strcmp(builtins[k]->name, name) == 0) return builtins[k];
    for (int k = 0; k < n_registered; k++)
        if (strcmp(registered[k]->name, name) == 0) return registered[k];
    return NULL;
}

int nb_layer_class_count(void) { return N_BUILTINS + n_registered; }

const nb_layer_class *nb_layer_class_at(int i) {
    if (i < 0 || i >= N_BUILTINS + n_registered) return NULL;
    return i < N_BUILTINS ? builtins[i] : registered[i - N_BUILTINS];
}

static bool is_string(nb_field_type t) {
    return t == NB_FIELD_STRING || t == NB_FIELD_ACTIVATION || t == NB_FIELD_INITIALIZER;
}

static size_t field_size(nb_field_type t) {
    switch (t) {
    case NB_FIELD_INT: return sizeof(int);
    case NB_FIELD_FLOAT: return sizeof(float);
    case NB_FIELD_BOOL: return sizeof(bool);
    default: return NB_FIELD_STRING_MAX;
    }
}

nb_status nb_layer_class_register(const nb_layer_class *cls) {
    if (!cls || !cls->name || !cls->name[0] || !cls->base_name || !cls->base_name[0] ||
        cls->max_inputs < 0 || cls->max_inputs > NB_LAYER_MAX_INPUTS ||
        !(cls->max_inputs >= 2 ? cls->apply_n != NULL : cls->apply != NULL)) {
        nb__set_last_error("layer class register: %s",
                           !cls ? "class is NULL"
                                : "a name, base_name or apply (apply_n for max_inputs >= 2, at most "
                                  "NB_LAYER_MAX_INPUTS) is missing or out of range");
        return NB_ERROR;
    }
    if (nb_layer_class_find(cls->name)) {
        nb__set_last_error("layer class register: '%s' is already registered", cls->name);
        return NB_ERROR;
    }
    if (strlen(cls->base_name) > NB_LAYER_NAME_MAX - 12 || (cls->n_fields > 0 && !cls->fields) || cls->n_fields < 0) {
        nb__set_last_error("layer class register: '%s' has a base_name over %d bytes or no fields array", cls->name,
                           NB_LAYER_NAME_MAX - 12);
        return NB_ERROR;
    }
    for (int i = 0; i < cls->n_fields; i++) {
        const nb_field *f = &cls->fields[i];
        if (!f->name || !f->name[0] || (unsigned)f->type > NB_FIELD_INITIALIZER ||
            f->offset + field_size(f->type) > cls->config_size || nb__class_field(cls, f->name) != f) {
            nb__set_last_error("layer class register: '%s' field %d (%s) has no name, an unknown type, a "
                               "repeated name or lies past config_size %zu", cls->name, i,
                               f->name ? f->name : "(null)", cls->config_size);
            return NB_ERROR;
        }
        /* JSON keys: "name" is the layer's, and "a.b" nests one level, in
         * an object no plain field "a" claims */
        const char *dot = strchr(f->name, '.');
        char head[NB_FIELD_STRING_MAX] = "";
        if (dot) snprintf(head, sizeof head, "%.*s", (int)(dot - f->name), f->name);
        if (strlen(f->name) >= NB_FIELD_STRING_MAX || strcmp(f->name, "name") == 0 ||
            (dot && (dot == f->name || !dot[1] || strchr(dot + 1, '.') || nb__class_field(cls, head)))) {
            nb__set_last_error("layer class register: '%s' field '%s' cannot key the JSON config (63 bytes at "
                               "most, not \"name\", one \"a.b\" level under no field \"a\")", cls->name, f->name);
            return NB_ERROR;
        }
    }
    if (n_registered == cap_registered) {
        int cap = cap_registered ? 2 * cap_registered : 8;
        const nb_layer_class **r = realloc(registered, (size_t)cap * sizeof *r);
        if (!r) {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "layer class register: out of memory");
            return NB_ERROR;
        }
        registered = r;
        cap_registered = cap;
    }
    registered[n_registered++] = cls;
    return NB_OK;
}

/* ---- fields ---- */

static void *at(const void *config, const nb_field *f) { return (char *)config + f->offset; }

const nb_field *nb__class_field(const nb_layer_class *cls, const char *name) {
    for (int i = 0; i < cls->n_fields; i++)
        if (strcmp(cls->fields[i].name, name) == 0) return &cls->fields[i];
    return NULL;
}

static bool range_ok(const nb_layer_class *cls, const nb_field *f, double v) {
    if (!(f->min < f->max)) return true;
    if (v >= f->min && (f->max_open ? v < f->max : v <= f->max)) return true;
    if (f->max >= (f->type == NB_FIELD_INT ? (double)INT_MAX : INFINITY))
        nb__set_last_error("%s: %s is %g, must be >= %g", cls->name, f->name, v, f->min);
    else
        nb__set_last_error("%s: %s is %g, must be in [%g,%g%c", cls->name, f->name, v, f->min, f->max,
                           f->max_open ? ')' : ']');
    return false;
}

bool nb__field_check(const nb_layer_class *cls, const nb_field *f, const void *config) {
    const void *p = at(config, f);
    switch (f->type) {
    case NB_FIELD_INT:
        return range_ok(cls, f, *(const int *)p);
    case NB_FIELD_FLOAT: {
        float v = *(const float *)p;
        if (!isfinite(v)) {
            nb__set_last_error("%s: %s is %g, must be finite", cls->name, f->name, (double)v);
            return false;
        }
        return range_ok(cls, f, v);
    }
    case NB_FIELD_BOOL:
        return true;
    default:
        break;
    }
    const char *s = p;
    if (!memchr(s, '\0', NB_FIELD_STRING_MAX)) {
        nb__set_last_error("%s: %s is not NUL-terminated within %d bytes", cls->name, f->name, NB_FIELD_STRING_MAX);
        return false;
    }
    if (!nb__utf8_valid(s, strlen(s))) {
        nb__set_last_error("%s: %s is not valid UTF-8", cls->name, f->name);
        return false;
    }
    nb_init init;
    if (f->type == NB_FIELD_ACTIVATION && !nb_activation_known(s)) {
        nb__set_last_error("%s: unknown activation '%s'", cls->name, s);
        return false;
    }
    if (f->type == NB_FIELD_INITIALIZER && s[0] && !nb_init_parse(s, &init)) {
        nb__set_last_error("%s: unknown initializer '%s'", cls->name, s);
        return false;
    }
    return true;
}

int nb__config_str(const nb_layer *l, char *buf, size_t len, bool set_only) {
    if (!buf) len = 0;
    if (len) buf[0] = '\0';
    if (!l) return 0;
    size_t used = 0;
    static const char zeros[NB_FIELD_STRING_MAX];
    for (int i = 0; i < l->cls->n_fields; i++) {
        const nb_field *f = &l->cls->fields[i];
        const void *p = at(l->config, f);
        /* all-zero bytes are the defaults */
        if (set_only && memcmp(p, zeros, is_string(f->type) ? 1 : field_size(f->type)) == 0) continue;
        char v[NB_FIELD_STRING_MAX + 8];
        switch (f->type) {
        case NB_FIELD_INT: snprintf(v, sizeof v, "%d", *(const int *)p); break;
        case NB_FIELD_FLOAT: snprintf(v, sizeof v, "%g", (double)*(const float *)p); break;
        case NB_FIELD_BOOL: snprintf(v, sizeof v, "%s", *(const bool *)p ? "true" : "false"); break;
        default: snprintf(v, sizeof v, "%s", *(const char *)p ? (const char *)p : "''"); break;
        }
        int k = snprintf(used < len ? buf + used : NULL, used < len ? len - used : 0, "%s%s=%s", used ? ", " : "",
                         f->name, v);
        used += (size_t)(k > 0 ? k : 0);
    }
    return (int)used;
}

int nb_layer_config_str(const nb_layer *l, char *buf, size_t len) { return nb__config_str(l, buf, len, false); }

/* ---- the nb_layer_spec front: its fields, mapped by name ---- */

#define SPEC_FIELD(n, t, member) {{n, t, offsetof(nb_layer_spec, member), 0, 0, false}, sizeof(((nb_layer_spec *)0)->member)}
static const struct {
    nb_field f;
    size_t size; /* of the member: strings are shorter than in configs */
} spec_fields[] = {
    SPEC_FIELD("units", NB_FIELD_INT, units),
    SPEC_FIELD("kernel_init", NB_FIELD_INITIALIZER, kernel_init),
    SPEC_FIELD("no_bias", NB_FIELD_BOOL, no_bias),
    SPEC_FIELD("kernel_reg.l1", NB_FIELD_FLOAT, kernel_reg.l1),
    SPEC_FIELD("kernel_reg.l2", NB_FIELD_FLOAT, kernel_reg.l2),
    SPEC_FIELD("max_norm", NB_FIELD_FLOAT, max_norm),
    SPEC_FIELD("max_norm_axis", NB_FIELD_INT, max_norm_axis),
    SPEC_FIELD("activation", NB_FIELD_ACTIVATION, activation),
    SPEC_FIELD("alpha", NB_FIELD_FLOAT, alpha),
    SPEC_FIELD("rate", NB_FIELD_FLOAT, rate),
    SPEC_FIELD("momentum", NB_FIELD_FLOAT, momentum),
    SPEC_FIELD("epsilon", NB_FIELD_FLOAT, epsilon),
    SPEC_FIELD("no_center", NB_FIELD_BOOL, no_center),
    SPEC_FIELD("no_scale", NB_FIELD_BOOL, no_scale),
};
#define N_SPEC_FIELDS (int)(sizeof spec_fields / sizeof spec_fields[0])

bool nb__spec_key(const char *name) {
    if (strcmp(name, "kernel_reg") == 0) return true;
    for (int i = 0; i < N_SPEC_FIELDS; i++)
        if (strcmp(spec_fields[i].f.name, name) == 0) return true;
    return false;
}

/* Copies the fields src and dst share by name. */
static void copy_fields(const nb_field *dst_f, void *dst, size_t dst_size, const nb_field *src_f, const void *src,
                        size_t src_size) {
    if (is_string(dst_f->type) != is_string(src_f->type) || (!is_string(dst_f->type) && dst_f->type != src_f->type))
        return;
    if (is_string(dst_f->type)) {
        size_t n = strnlen(at(src, src_f), src_size);
        if (n >= dst_size) n = dst_size - 1;
        memcpy(at(dst, dst_f), at(src, src_f), n);
        ((char *)at(dst, dst_f))[n] = '\0';
    } else {
        memcpy(at(dst, dst_f), at(src, src_f), field_size(dst_f->type));
    }
}

/* false, with nb_last_error set, for a string the spec cut short (see
 * copy_name): better an error than a layer with another activation. */
static bool spec_to_config(const nb_layer_class *cls, const nb_layer_spec *s, void *config) {
    if (!memchr(s->name, '\0', sizeof s->name)) {
        nb__set_last_error("%s: the spec's name does not fit in its %zu bytes", cls->name, sizeof s->name - 1);
        return false;
    }
    for (int i = 0; i < cls->n_fields; i++)
        for (int k = 0; k < N_SPEC_FIELDS; k++)
            if (strcmp(cls->fields[i].name, spec_fields[k].f.name) == 0) {
                if (is_string(spec_fields[k].f.type) &&
                    !memchr(at(s, &spec_fields[k].f), '\0', spec_fields[k].size)) {
                    nb__set_last_error("%s: the spec's %s does not fit in its %zu bytes (a class config holds %d: "
                                       "nb_model_add_layer)", cls->name, spec_fields[k].f.name,
                                       spec_fields[k].size - 1, NB_FIELD_STRING_MAX - 1);
                    return false;
                }
                copy_fields(&cls->fields[i], config, NB_FIELD_STRING_MAX, &spec_fields[k].f, s, spec_fields[k].size);
            }
    return true;
}

static void refresh_spec(nb_layer *l) {
    memset(&l->spec, 0, sizeof l->spec);
    l->spec.kind = nb__class_kind(l->cls);
    snprintf(l->spec.name, sizeof l->spec.name, "%s", l->name);
    for (int i = 0; i < l->cls->n_fields; i++)
        for (int k = 0; k < N_SPEC_FIELDS; k++)
            if (strcmp(l->cls->fields[i].name, spec_fields[k].f.name) == 0)
                copy_fields(&spec_fields[k].f, &l->spec, spec_fields[k].size, &l->cls->fields[i], l->config,
                            NB_FIELD_STRING_MAX);
}

/* ---- specs ---- */

/* src into dst, NULL as ""; a src too long fills dst without its NUL, so
 * that nb_layer_new refuses it rather than use a cut name. */
static void copy_name(char *dst, size_t len, const char *src) {
    size_t n = src ? strlen(src) : 0;
    memcpy(dst, src ? src : "", n < len ? n + 1 : len);
}

nb_layer_spec nb_dense_spec(int units, const char *activation, const char *kernel_init) {
    nb_layer_spec s = {.kind = NB_LAYER_DENSE, .units = units};
    copy_name(s.activation, sizeof s.activation, activation);
    copy_name(s.kernel_init, sizeof s.kernel_init, kernel_init);
    return s;
}

nb_layer_spec nb_batch_norm_spec(void) { return (nb_layer_spec){.kind = NB_LAYER_BATCH_NORM}; }
nb_layer_spec nb_dropout_spec(float rate) { return (nb_layer_spec){.kind = NB_LAYER_DROPOUT, .rate = rate}; }

nb_layer_spec nb_alpha_dropout_spec(float rate) {
    return (nb_layer_spec){.kind = NB_LAYER_ALPHA_DROPOUT, .rate = rate};
}

nb_layer_spec nb_activation_spec(const char *activation) {
    nb_layer_spec s = {.kind = NB_LAYER_ACTIVATION};
    copy_name(s.activation, sizeof s.activation, activation);
    return s;
}

/* ---- making layers ---- */

nb_tensor *nb_layer_add_tensor(nb_layer *l, const char *role, int rank, const int *dims, bool trainable) {
    const char *who = l ? l->cls->name : "layer";
    if (!l || !role || !role[0] || strlen(role) >= NB_ROLE_MAX || l->n_tensors == NB_LAYER_MAX_TENSORS ||
        nb_layer_find_tensor(l, role)) {
        nb__set_last_error("%s: cannot add tensor '%s' (a role of 1 to %d bytes, unique, at most %d tensors)", who,
                           role ? role : "(null)", NB_ROLE_MAX - 1, NB_LAYER_MAX_TENSORS);
        return NULL;
    }
    uint64_t n = 1;
    for (int i = 0; i < rank && dims; i++) n *= (uint64_t)(dims[i] > 0 ? dims[i] : 0);
    if (n > l->float_budget - l->floats_made) {
        l->over_budget = true;
        nb__set_error(NB_ERR_CORRUPT, "%s: its tensors need more floats than the file holds", who);
        return NULL;
    }
    nb_tensor *t = nb_tensor_new(rank, dims);
    if (!t) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "%s: out of memory for its tensors", who);
        return NULL;
    }
    l->floats_made += n;
    t->trainable = trainable;
    l->fixed[l->n_tensors] = !trainable;
    snprintf(l->roles[l->n_tensors], NB_ROLE_MAX, "%s", role);
    l->tensors[l->n_tensors++] = t;
    nb__layer_name_tensors(l);
    return t;
}

nb_tensor *nb_layer_find_tensor(const nb_layer *l, const char *role) {
    for (int i = 0; l && role && i < l->n_tensors; i++)
        if (strcmp(l->roles[i], role) == 0) return l->tensors[i];
    return NULL;
}

nb_tensor *nb__layer_scratch(nb_layer *l, int rank, const int *dims) {
    if (!l->scratch) l->scratch = nb_tensor_new(rank, dims);
    if (!l->scratch) nb__set_error(NB_ERR_OUT_OF_MEMORY, "%s: out of memory for its tensors", l->cls->name);
    return l->scratch;
}

void nb__layer_name_tensors(nb_layer *l) {
    for (int i = 0; i < l->n_tensors; i++) {
        char full[NB_LAYER_NAME_MAX + NB_ROLE_MAX + 1];
        snprintf(full, sizeof full, "%s/%s", l->name, l->roles[i]);
        nb_tensor_set_name(l->tensors[i], full); /* cut at 63 bytes, as tensor names are */
    }
}

void nb__layer_rename(nb_layer *l, const char *name) {
    snprintf(l->name, sizeof l->name, "%s", name);
    nb__layer_name_tensors(l);
    refresh_spec(l);
}

/* The merge's output shape: by its class, or every input as the first. */
static bool shape_n(const nb_layer_class *cls, const void *cfg, int n, const nb_shape *in, nb_shape *out) {
    char err[200] = "";
    *out = in[0];
    if (cls->shape_n) {
        if (cls->shape_n(cfg, n, in, out, err, sizeof err) == 0) return true;
        nb__set_last_error("%s: %s", cls->name, err[0] ? err : "the inputs do not fit");
        return false;
    }
    for (int i = 1; i < n; i++)
        if (in[i].rank != in[0].rank || memcmp(in[i].dim, in[0].dim, (size_t)in[0].rank * sizeof(int)) != 0) {
            char a[NB_SHAPE_STR_LEN], b[NB_SHAPE_STR_LEN];
            nb_shape_str(&in[0], a, sizeof a);
            nb_shape_str(&in[i], b, sizeof b);
            nb__set_last_error("%s: input %d has shape %s, input 0 has %s; they must agree", cls->name, i, b, a);
            return false;
        }
    return true;
}

nb_layer *nb__layer_make_n(const nb_layer_class *cls, const char *name, const void *config, int n,
                           const nb_shape *in, nb_rng *rng, uint64_t float_budget, bool *over_budget) {
    if (over_budget) *over_budget = false;
    if (!cls || !rng || !in) {
        nb__set_last_error("layer: class, input dims or rng is NULL");
        return NULL;
    }
    const bool merge = cls->max_inputs >= 2;
    if (merge ? n < 2 || n > cls->max_inputs : n != 1) {
        if (merge) nb__set_last_error("%s: takes 2 to %d inputs, given %d", cls->name, cls->max_inputs, n);
        else nb__set_last_error("%s: takes one input, given %d", cls->name, n);
        return NULL;
    }
    for (int k = 0; k < n; k++) {
        if (in[k].rank < 1 || in[k].rank > NB_MAX_RANK - 1) {
            nb__set_last_error("%s: input rank %d outside [1,%d] (without the batch)", cls->name, in[k].rank,
                               NB_MAX_RANK - 1);
            return NULL;
        }
        for (int i = 0; i < in[k].rank; i++)
            if (in[k].dim[i] < 1) {
                nb__set_last_error("%s: input dimension %d is %d", cls->name, i, in[k].dim[i]);
                return NULL;
            }
    }
    if (name && strlen(name) >= NB_LAYER_NAME_MAX) {
        nb__set_last_error("%s: the name '%.40s...' has %d bytes or more", cls->name, name, NB_LAYER_NAME_MAX);
        return NULL;
    }
    void *cfg = calloc(1, cls->config_size ? cls->config_size : 1);
    nb_layer *l = calloc(1, sizeof *l);
    if (!cfg || !l) {
        free(cfg);
        free(l);
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "%s: out of memory", cls->name);
        return NULL;
    }
    if (config) memcpy(cfg, config, cls->config_size);
    l->refs = 1;
    l->cls = cls;
    l->config = cfg;
    for (int i = 0; i < cls->n_fields; i++)
        if (!nb__field_check(cls, &cls->fields[i], cfg)) {
            nb_layer_free(l);
            return NULL;
        }
    const int rank = in[0].rank;
    l->n_inputs = n;
    memcpy(l->in_shapes, in, (size_t)n * sizeof *in);
    l->in_rank = l->out_rank = rank;
    memcpy(l->in_dims, in[0].dim, (size_t)rank * sizeof(int));
    memcpy(l->out_dims, in[0].dim, (size_t)rank * sizeof(int));
    char err[200] = "";
    if (merge) {
        nb_shape out;
        if (!shape_n(cls, cfg, n, in, &out)) {
            nb_layer_free(l);
            return NULL;
        }
        l->out_rank = out.rank;
        memcpy(l->out_dims, out.dim, sizeof out.dim);
    } else if (cls->shape && cls->shape(cfg, rank, in[0].dim, &l->out_rank, l->out_dims, err, sizeof err) != 0) {
        nb__set_last_error("%s: %s", cls->name, err[0] ? err : "the input does not fit");
        nb_layer_free(l);
        return NULL;
    }
    if (l->out_rank < 1 || l->out_rank > NB_MAX_RANK - 1) {
        nb__set_last_error("%s: output rank %d outside [1,%d]", cls->name, l->out_rank, NB_MAX_RANK - 1);
        nb_layer_free(l);
        return NULL;
    }
    snprintf(l->name, sizeof l->name, "%s", name && name[0] ? name : cls->base_name);
    l->trainable = true;
    l->float_budget = float_budget;
    if (cls->build && cls->build(l, rng) != NB_OK) {
        if (over_budget) *over_budget = l->over_budget;
        nb_layer_free(l);
        return NULL;
    }
    l->float_budget = UINT64_MAX;
    refresh_spec(l);
    return l;
}

nb_layer *nb__layer_make(const nb_layer_class *cls, const char *name, const void *config, int rank,
                         const int *in_dims, nb_rng *rng, uint64_t float_budget, bool *over_budget) {
    if (over_budget) *over_budget = false;
    if (!cls || !rng || (rank > 0 && !in_dims)) {
        nb__set_last_error("layer: class, input dims or rng is NULL");
        return NULL;
    }
    nb_shape in = {.rank = rank};
    if (rank > 0 && rank <= NB_MAX_RANK) memcpy(in.dim, in_dims, (size_t)rank * sizeof(int));
    else if (rank > NB_MAX_RANK) in.rank = NB_MAX_RANK + 1; /* refused as out of range */
    return nb__layer_make_n(cls, name, config, 1, &in, rng, float_budget, over_budget);
}

nb_layer *nb_layer_new_from_config(const nb_layer_class *cls, const char *name, const void *config, int rank,
                                   const int *in_dims, nb_rng *rng) {
    return nb__layer_make(cls, name, config, rank, in_dims, rng, UINT64_MAX, NULL);
}

nb_layer *nb_layer_new(const nb_layer_spec *spec, int rank, const int *in_dims, nb_rng *rng) {
    if (!spec) {
        nb__set_last_error("layer: spec, input dims or rng is NULL");
        return NULL;
    }
    const nb_layer_class *cls = nb__builtin_class(spec->kind);
    if (cls && cls->max_inputs >= 2) {
        nb__set_last_error("layer: a %s merges several inputs: make it with nb_model_merge", cls->name);
        return NULL;
    }
    if (!cls) {
        nb__set_last_error(spec->kind == NB_LAYER_CUSTOM
                               ? "layer: a registered class's layer is made with nb_layer_new_from_config"
                               : "layer: unknown kind %d", (int)spec->kind);
        return NULL;
    }
    void *cfg = calloc(1, cls->config_size ? cls->config_size : 1);
    if (!cfg) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "%s: out of memory", cls->name);
        return NULL;
    }
    nb_layer *l = spec_to_config(cls, spec, cfg)
                      ? nb__layer_make(cls, spec->name, cfg, rank, in_dims, rng, UINT64_MAX, NULL)
                      : NULL;
    free(cfg);
    return l;
}

void nb_layer_free(nb_layer *l) {
    if (!l || --l->refs > 0) return;
    nb_tensor_free(l->scratch);
    for (int i = 0; i < l->n_tensors; i++) nb_tensor_free(l->tensors[i]);
    free(l->config);
    free(l);
}

/* ---- applying ---- */

nb_node *nb_layer_apply_n(nb_layer *l, nb_graph *g, int n, nb_node *const *x, bool mc_dropout) {
    if (!g || nb_graph_status(g) != NB_OK) return NULL;
    if (!l || !x) {
        nb_graph_fail(g, "layer apply: %s is NULL", l ? "input" : "layer");
        return NULL;
    }
    if (n != l->n_inputs) {
        nb_graph_fail(g, "%s '%s': takes %d input%s, given %d", l->cls->name, l->name, l->n_inputs,
                      l->n_inputs == 1 ? "" : "s", n);
        return NULL;
    }
    /* each input must have the shape the layer was made for, after the batch */
    for (int k = 0; k < n; k++) {
        if (!x[k]) {
            nb_graph_fail(g, "layer apply: input %d is NULL", k);
            return NULL;
        }
        const nb_shape *want_s = &l->in_shapes[k];
        nb_shape s = nb_node_shape(x[k]);
        bool fits = s.rank == want_s->rank + 1;
        for (int i = 0; fits && i < want_s->rank; i++) fits = s.dim[i + 1] == want_s->dim[i];
        if (!fits) {
            char got[NB_SHAPE_STR_LEN], want[NB_SHAPE_STR_LEN];
            nb_shape w = {.rank = want_s->rank + 1, .dim = {-1}};
            for (int i = 0; i < want_s->rank; i++) w.dim[i + 1] = want_s->dim[i];
            nb_shape_str(&s, got, sizeof got);
            nb_shape_str(&w, want, sizeof want);
            if (n == 1)
                nb_graph_fail(g, "%s '%s': input %s does not fit, expected %s (-1 is the batch)", l->cls->name,
                              l->name, got, want);
            else
                nb_graph_fail(g, "%s '%s': input %d %s does not fit, expected %s (-1 is the batch)", l->cls->name,
                              l->name, k, got, want);
            return NULL;
        }
    }
    return l->cls->max_inputs >= 2 ? l->cls->apply_n(l, g, n, x, mc_dropout) : l->cls->apply(l, g, x[0], mc_dropout);
}

nb_node *nb_layer_apply(nb_layer *l, nb_graph *g, nb_node *x, bool mc_dropout) {
    return nb_layer_apply_n(l, g, 1, &x, mc_dropout);
}

int nb_layer_input_count(const nb_layer *l) { return l ? l->n_inputs : 0; }

int nb_layer_input_dims_at(const nb_layer *l, int i, int *dims) {
    if (!l || i < 0 || i >= l->n_inputs) return 0;
    if (dims) memcpy(dims, l->in_shapes[i].dim, (size_t)l->in_shapes[i].rank * sizeof(int));
    return l->in_shapes[i].rank;
}

/* ---- queries, freezing, penalties, constraints ---- */

const nb_layer_spec *nb_layer_spec_of(const nb_layer *l) { return l ? &l->spec : NULL; }
const char *nb_layer_name(const nb_layer *l) { return l ? l->name : ""; }
const nb_layer_class *nb_layer_class_of(const nb_layer *l) { return l ? l->cls : NULL; }
const void *nb_layer_config(const nb_layer *l) { return l ? l->config : NULL; }

int nb_layer_input_dims(const nb_layer *l, int *dims) {
    if (!l) return 0;
    if (dims) memcpy(dims, l->in_dims, (size_t)l->in_rank * sizeof(int));
    return l->in_rank;
}

int nb_layer_output_dims(const nb_layer *l, int *dims) {
    if (!l) return 0;
    if (dims) memcpy(dims, l->out_dims, (size_t)l->out_rank * sizeof(int));
    return l->out_rank;
}

int nb_layer_tensor_count(const nb_layer *l) { return l ? l->n_tensors : 0; }

nb_tensor *nb_layer_tensor(const nb_layer *l, int i) {
    return l && i >= 0 && i < l->n_tensors ? l->tensors[i] : NULL;
}

void nb_layer_set_trainable(nb_layer *l, bool trainable) {
    if (!l) return;
    l->trainable = trainable;
    for (int i = 0; i < l->n_tensors; i++)
        if (!l->fixed[i]) l->tensors[i]->trainable = trainable;
}

bool nb_layer_trainable(const nb_layer *l) { return l && l->trainable; }

nb_status nb_layer_set_lr_multiplier(nb_layer *l, float multiplier) {
    if (!l || !(multiplier > 0) || !isfinite(multiplier)) {
        nb__set_last_error("layer lr multiplier: %s", !l ? "layer is NULL" : "the multiplier must be > 0 and finite");
        return NB_ERROR;
    }
    for (int i = 0; i < l->n_tensors; i++) l->tensors[i]->lr_scale = multiplier;
    return NB_OK;
}

nb_node *nb_layer_penalty(nb_layer *l, nb_graph *g) {
    return l && l->cls->penalty ? l->cls->penalty(l, g) : NULL;
}

void nb_layer_constrain(nb_layer *l) {
    if (l && l->cls->constrain) l->cls->constrain(l);
}
