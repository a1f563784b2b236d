/* nn/save.c — saving and loading models in the safetensors format.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * (padded with spaces so the data starts at a multiple of 8), then the data:
 * every tensor as little-endian float32, back to back in the model's tensor
 * order. The header maps each tensor name to its dtype, shape and byte range
 * in the data, and holds string metadata under "__metadata__":
 *   format         "nabla"
 *   nabla_version  "1"
 *   architecture   a JSON document (as a string): input shape, seed, and
 *                  each layer's Keras class name, trainable flag and full spec
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
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "graph/file.h"
#include "graph/internal.h"
#include "nn/internal.h"
#include "nn/json.h"

/* The reference implementation's limit: a longer header is not a model. */
#define HEADER_MAX 100000000ull
#define FORMAT_VERSION "1"

/* ---- messages: "<op> '<path>': <problem>" ---- */

typedef struct ctx {
    const char *op, *path;
} ctx;

static bool bad(const ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool bad(const ctx *c, const char *fmt, ...) {
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap); /* before nb__set_last_error: fmt may read nb_last_error() */
    va_end(ap);
    const char *p = c->path ? c->path : "(null)";
    size_t n = strlen(p);
    /* keep the end of a long path: the problem must fit in the message too */
    if (n > 100) nb__set_last_error("%s '...%s': %s", c->op, p + n - 97, what);
    else nb__set_last_error("%s '%s': %s", c->op, p, what);
    return false;
}

/* ---- little-endian float32, whatever the host ---- */

static void to_le(const float *src, size_t n, unsigned char *dst) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        dst[4 * i] = (unsigned char)u;
        dst[4 * i + 1] = (unsigned char)(u >> 8);
        dst[4 * i + 2] = (unsigned char)(u >> 16);
        dst[4 * i + 3] = (unsigned char)(u >> 24);
    }
}

/* In place is fine: element i's bytes are read before they are written. */
static void from_le(const unsigned char *src, size_t n, float *dst) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 | (uint32_t)src[4 * i + 2] << 16 |
                     (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &u, 4);
    }
}

static uLong crc_bytes(uLong crc, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n) {
        uInt k = n > (1u << 30) ? 1u << 30 : (uInt)n;
        crc = crc32(crc, b, k);
        b += k;
        n -= k;
    }
    return crc;
}

#define STAGE_FLOATS 4096

/* CRC of the tensors' little-endian bytes, continuing crc. */
static uLong crc_tensors(uLong crc, nb_tensor *const *t, int n) {
    unsigned char stage[4 * STAGE_FLOATS];
    for (int i = 0; i < n; i++)
        for (size_t at = 0; at < t[i]->size; at += STAGE_FLOATS) {
            size_t k = t[i]->size - at < STAGE_FLOATS ? t[i]->size - at : STAGE_FLOATS;
            to_le(t[i]->data + at, k, stage);
            crc = crc_bytes(crc, stage, 4 * k);
        }
    return crc;
}

/* ---- the architecture document ---- */

static void write_spec(nb_json_writer *w, const nb_layer_spec *s) {
    nb__jw_raw(w, "{\"name\":");
    nb__jw_string(w, s->name);
    nb__jw_raw(w, ",\"units\":");
    nb__jw_int(w, s->units);
    nb__jw_raw(w, ",\"kernel_init\":");
    nb__jw_string(w, s->kernel_init);
    nb__jw_raw(w, ",\"no_bias\":");
    nb__jw_bool(w, s->no_bias);
    nb__jw_raw(w, ",\"kernel_reg\":{\"l1\":");
    nb__jw_float(w, s->kernel_reg.l1);
    nb__jw_raw(w, ",\"l2\":");
    nb__jw_float(w, s->kernel_reg.l2);
    nb__jw_raw(w, "},\"max_norm\":");
    nb__jw_float(w, s->max_norm);
    nb__jw_raw(w, ",\"max_norm_axis\":");
    nb__jw_int(w, s->max_norm_axis);
    nb__jw_raw(w, ",\"activation\":");
    nb__jw_string(w, s->activation);
    nb__jw_raw(w, ",\"alpha\":");
    nb__jw_float(w, s->alpha);
    nb__jw_raw(w, ",\"rate\":");
    nb__jw_float(w, s->rate);
    nb__jw_raw(w, ",\"momentum\":");
    nb__jw_float(w, s->momentum);
    nb__jw_raw(w, ",\"epsilon\":");
    nb__jw_float(w, s->epsilon);
    nb__jw_raw(w, ",\"no_center\":");
    nb__jw_bool(w, s->no_center);
    nb__jw_raw(w, ",\"no_scale\":");
    nb__jw_bool(w, s->no_scale);
    nb__jw_raw(w, "}");
}

/* {"class_name":"Sequential","seed":7,"input_shape":[28,28],"layers":[
 *   {"class_name":"Dense","trainable":true,"config":{"name":"dense",...}}]}
 * The seed rebuilds the model's initializer stream too: a layer added after
 * loading gets the weights it would have got in the saved model. */
static void write_architecture(nb_json_writer *w, const nb_model *m) {
    nb__jw_raw(w, "{\"class_name\":\"Sequential\",\"seed\":");
    nb__jw_uint(w, m->seed);
    nb__jw_raw(w, ",\"input_shape\":[");
    for (int i = 0; i < m->in_rank; i++) {
        if (i) nb__jw_raw(w, ",");
        nb__jw_int(w, m->in_dims[i]);
    }
    nb__jw_raw(w, "],\"layers\":[");
    for (int i = 0; i < m->n_layers; i++) {
        const nb_layer *l = m->layers[i];
        if (i) nb__jw_raw(w, ",");
        nb__jw_raw(w, "{\"class_name\":");
        nb__jw_string(w, nb__layer_class(l->spec.kind));
        nb__jw_raw(w, ",\"trainable\":");
        nb__jw_bool(w, l->trainable);
        nb__jw_raw(w, ",\"config\":");
        write_spec(w, &l->spec);
        nb__jw_raw(w, "}");
    }
    nb__jw_raw(w, "]}");
}

/* ---- saving ---- */

/* Names go into JSON, which must be UTF-8, and key the tensors, which must
 * be unique; a model could break either (a name is any bytes, and a layer
 * named by the caller may clash with one named by the model). */
static bool check_names(const ctx *c, const nb_model *m) {
    for (int i = 0; i < m->n_layers; i++) {
        const nb_layer_spec *s = &m->layers[i]->spec;
        const char *str[] = {s->name, s->kernel_init, s->activation};
        for (int k = 0; k < 3; k++)
            if (!nb__utf8_valid(str[k], strlen(str[k])))
                return bad(c, "layer %d has a %s that is not valid UTF-8", i,
                           k == 0 ? "name" : k == 1 ? "kernel_init" : "activation");
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const char *n = m->tensors[i]->name;
        if (!n[0] || strcmp(n, "__metadata__") == 0 || !nb__utf8_valid(n, strlen(n)))
            return bad(c, "tensor %d has the name \"%.64s\", which cannot key a safetensors entry", i, n);
        for (int k = 0; k < i; k++)
            if (strcmp(n, m->tensors[k]->name) == 0)
                return bad(c, "two tensors are named \"%s\" (two layers share a name)", n);
    }
    return true;
}

static bool build_header(const ctx *c, const nb_model *m, nb_json_writer *h) {
    nb_json_writer arch = {0};
    write_architecture(&arch, m);
    if (arch.failed) {
        free(arch.buf);
        return bad(c, "out of memory");
    }
    uLong crc = crc_tensors(crc_bytes(crc32(0, Z_NULL, 0), arch.buf, arch.len), m->tensors, m->n_tensors);
    char crc_hex[16];
    snprintf(crc_hex, sizeof crc_hex, "%08lx", crc & 0xFFFFFFFFul);

    nb__jw_raw(h, "{\"__metadata__\":{\"format\":\"nabla\",\"nabla_version\":\"" FORMAT_VERSION "\",\"architecture\":");
    nb__jw_string(h, arch.buf);
    nb__jw_raw(h, ",\"weights_crc32\":");
    nb__jw_string(h, crc_hex);
    nb__jw_raw(h, "}");
    free(arch.buf);
    uint64_t at = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const nb_tensor *t = m->tensors[i];
        nb__jw_raw(h, ",");
        nb__jw_string(h, t->name);
        nb__jw_raw(h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->shape.rank; d++) {
            if (d) nb__jw_raw(h, ",");
            nb__jw_int(h, t->shape.dim[d]);
        }
        nb__jw_raw(h, "],\"data_offsets\":[");
        nb__jw_uint(h, at);
        nb__jw_raw(h, ",");
        at += 4 * (uint64_t)t->size;
        nb__jw_uint(h, at);
        nb__jw_raw(h, "]}");
    }
    nb__jw_raw(h, "}");
    while (!h->failed && (8 + h->len) % 8) nb__jw_raw(h, " ");
    if (h->failed) return bad(c, "out of memory");
    if (h->len > HEADER_MAX) return bad(c, "the header would be %zu bytes, over the format's 100 MB", h->len);
    return true;
}

static bool write_all(FILE *f, const nb_json_writer *h, const nb_model *m) {
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)((uint64_t)h->len >> (8 * i));
    if (fwrite(prefix, 1, 8, f) != 8 || fwrite(h->buf, 1, h->len, f) != h->len) return false;
    unsigned char stage[4 * STAGE_FLOATS];
    for (int i = 0; i < m->n_tensors; i++) {
        const nb_tensor *t = m->tensors[i];
        for (size_t at = 0; at < t->size; at += STAGE_FLOATS) {
            size_t k = t->size - at < STAGE_FLOATS ? t->size - at : STAGE_FLOATS;
            to_le(t->data + at, k, stage);
            if (fwrite(stage, 4, k, f) != k) return false;
        }
    }
    return true;
}

nb_status nb_model_save(const nb_model *m, const char *path) {
    ctx c = {"model save", path};
    if (!m || !path || !path[0]) {
        bad(&c, "%s", !m ? "model is NULL" : "no path");
        return NB_ERROR;
    }
    if (!check_names(&c, m)) return NB_ERROR;
    nb_json_writer h = {0};
    if (!build_header(&c, m, &h)) {
        free(h.buf);
        return NB_ERROR;
    }
    nb_atomic_file out;
    char err[256];
    bool ok = nb__atomic_open(&out, path, err, sizeof err);
    ok = ok && nb__atomic_commit(&out, write_all(out.f, &h, m), err, sizeof err);
    if (!ok) bad(&c, "%s", err);
    free(h.buf);
    return ok ? NB_OK : NB_ERROR;
}

/* ---- reading a safetensors file ---- */

typedef struct entry {
    const char *name;
    int rank;
    int dims[NB_MAX_RANK];
    uint64_t begin, end;
    bool used;
} entry;

typedef struct sfile {
    FILE *f;
    char *text;         /* the header */
    nb_json *header;
    const nb_json *meta; /* __metadata__, or NULL */
    entry *entries;     /* every tensor in the header */
    size_t n_entries;
    uint64_t data_start, data_len;
} sfile;

static void sfile_close(sfile *s) {
    if (s->f) fclose(s->f);
    free(s->text);
    nb__json_free(s->header);
    free(s->entries);
    memset(s, 0, sizeof *s);
}

static void shape_str(int rank, const int *dims, char *buf, size_t len) {
    nb_shape s = {.rank = rank};
    memcpy(s.dim, dims, (size_t)rank * sizeof(int));
    nb_shape_str(&s, buf, len);
}

/* One header entry: {"dtype":"F32","shape":[..],"data_offsets":[b,e]}. */
static bool read_entry(const ctx *c, const char *name, const nb_json *v, entry *e) {
    const nb_json *dtype = nb__json_get(v, "dtype"), *shape = nb__json_get(v, "shape"),
                  *off = nb__json_get(v, "data_offsets");
    e->name = name;
    if (!v || v->type != NB_JSON_OBJECT) return bad(c, "tensor \"%.64s\" is not an object in the header", name);
    if (!dtype || dtype->type != NB_JSON_STRING) return bad(c, "tensor \"%.64s\" has no dtype", name);
    if (strcmp(dtype->string, "F32") != 0)
        return bad(c, "tensor \"%.64s\" has dtype %.16s; nabla reads F32 only", name, dtype->string);
    if (!shape || shape->type != NB_JSON_ARRAY) return bad(c, "tensor \"%.64s\" has no shape", name);
    if (shape->count > NB_MAX_RANK)
        return bad(c, "tensor \"%.64s\" has rank %zu; nabla tensors have at most %d", name, shape->count, NB_MAX_RANK);
    uint64_t elems = 1;
    e->rank = (int)shape->count;
    for (size_t d = 0; d < shape->count; d++) {
        const nb_json *x = &shape->items[d];
        if (x->type != NB_JSON_NUMBER || !x->is_uint || x->uint > INT32_MAX)
            return bad(c, "tensor \"%.64s\" has a shape that is not a list of sizes", name);
        e->dims[d] = (int)x->uint;
        if (x->uint && elems > UINT64_MAX / 4 / x->uint)
            return bad(c, "tensor \"%.64s\" has a shape too large to address", name);
        elems *= x->uint;
    }
    if (!off || off->type != NB_JSON_ARRAY || off->count != 2 || off->items[0].type != NB_JSON_NUMBER ||
        off->items[1].type != NB_JSON_NUMBER || !off->items[0].is_uint || !off->items[1].is_uint)
        return bad(c, "tensor \"%.64s\" has no data_offsets [begin, end]", name);
    e->begin = off->items[0].uint;
    e->end = off->items[1].uint;
    if (e->end < e->begin)
        return bad(c, "tensor \"%.64s\" has data_offsets [%" PRIu64 ",%" PRIu64 "] that end before they begin",
                   name, e->begin, e->end);
    if (e->end - e->begin != 4 * elems) {
        char s[NB_SHAPE_STR_LEN];
        shape_str(e->rank, e->dims, s, sizeof s);
        return bad(c, "tensor \"%.64s\": data_offsets [%" PRIu64 ",%" PRIu64 "] hold %" PRIu64
                   " bytes, shape %s needs %" PRIu64, name, e->begin, e->end, e->end - e->begin, s, 4 * elems);
    }
    return true;
}

static int cmp_begin(const void *a, const void *b) {
    const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The data must be exactly the tensors, back to back, in some order: no
 * byte shared, none unclaimed, nothing after the last. */
static bool check_layout(const ctx *c, sfile *s) {
    for (size_t i = 0; i < s->n_entries; i++)
        if (s->entries[i].end > s->data_len)
            return bad(c, "tensor \"%.64s\" ends at byte %" PRIu64 " of the data, which has %" PRIu64
                       " (truncated?)", s->entries[i].name, s->entries[i].end, s->data_len);
    entry **by = malloc((s->n_entries ? s->n_entries : 1) * sizeof *by);
    if (!by) return bad(c, "out of memory");
    for (size_t i = 0; i < s->n_entries; i++) by[i] = &s->entries[i];
    qsort(by, s->n_entries, sizeof *by, cmp_begin);
    uint64_t at = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < s->n_entries; i++) {
        if (by[i]->begin < at)
            ok = bad(c, "tensors \"%.64s\" and \"%.64s\" overlap in the data", by[i - 1]->name, by[i]->name);
        else if (by[i]->begin > at)
            ok = bad(c, "data bytes %" PRIu64 " to %" PRIu64 " belong to no tensor", at, by[i]->begin);
        at = by[i]->end;
    }
    free(by);
    if (ok && at != s->data_len)
        ok = bad(c, "the file is %" PRIu64 " bytes longer than its header says", s->data_len - at);
    return ok;
}

/* Opens path and checks everything the format promises, nothing about any
 * model: the prefix, the header's JSON, each entry, and the layout. */
static bool sfile_open(const ctx *c, sfile *s) {
    memset(s, 0, sizeof *s);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer before the
     * regular-file check refuses it (regular files ignore the flag) */
    int fd = open(c->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return bad(c, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bad(c, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return bad(c, "not a regular file");
    }
    s->f = fdopen(fd, "rb");
    if (!s->f) {
        close(fd);
        return bad(c, "out of memory");
    }
    const uint64_t size = (uint64_t)st.st_size;
    unsigned char prefix[8];
    if (size < 8 || fread(prefix, 1, 8, s->f) != 8)
        return bad(c, "the file is %" PRIu64 " bytes, too short for a safetensors header", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | prefix[i];
    if (n > HEADER_MAX)
        return bad(c, "header length %" PRIu64 " is absurd (over 100 MB): not a safetensors file", n);
    if (n > size - 8)
        return bad(c, "header length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes)", n, size);
    s->data_start = 8 + n;
    s->data_len = size - 8 - n;
    s->text = malloc(n ? n : 1);
    if (!s->text) return bad(c, "out of memory for a header of %" PRIu64 " bytes", n);
    if (fread(s->text, 1, n, s->f) != n) return bad(c, "reading the header failed");
    size_t first = 0; /* JSON may start with whitespace; then it must be an object */
    while (first < n && s->text[first] && strchr(" \t\r\n", s->text[first])) first++;
    if (first == n || s->text[first] != '{') return bad(c, "the header is not a JSON object: not a safetensors file");
    char why[200];
    s->header = nb__json_parse(s->text, n, why, sizeof why);
    if (!s->header) return bad(c, "the header is not valid JSON (%s)", why);
    const nb_json *h = s->header;
    if (h->type != NB_JSON_OBJECT) return bad(c, "the header is not a JSON object");
    s->entries = malloc((h->count ? h->count : 1) * sizeof *s->entries);
    if (!s->entries) return bad(c, "out of memory");
    for (size_t i = 0; i < h->count; i++) {
        if (strcmp(h->keys[i], "__metadata__") == 0) {
            const nb_json *md = &h->items[i];
            if (md->type == NB_JSON_NULL) continue; /* the reference reads null as no metadata */
            bool strings = md->type == NB_JSON_OBJECT;
            for (size_t k = 0; strings && k < md->count; k++) strings = md->items[k].type == NB_JSON_STRING;
            if (!strings) return bad(c, "__metadata__ must map strings to strings");
            s->meta = md;
            continue;
        }
        entry *e = &s->entries[s->n_entries++];
        memset(e, 0, sizeof *e);
        if (!read_entry(c, h->keys[i], &h->items[i], e)) return false;
    }
    return check_layout(c, s);
}

static const char *meta_str(const sfile *s, const char *key) {
    const nb_json *v = nb__json_get(s->meta, key);
    return v ? v->string : NULL; /* sfile_open checked every value is a string */
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp((*(entry *const *)a)->name, (*(entry *const *)b)->name);
}

/* Pairs each of the model's tensors with its entry (match[i]), by name and
 * shape; the file must hold those tensors and no others. */
static bool match_tensors(const ctx *c, sfile *s, nb_tensor *const *t, int n, entry **match) {
    entry **by = malloc((s->n_entries ? s->n_entries : 1) * sizeof *by);
    if (!by) return bad(c, "out of memory");
    for (size_t i = 0; i < s->n_entries; i++) by[i] = &s->entries[i];
    qsort(by, s->n_entries, sizeof *by, cmp_entry_name);
    bool ok = true;
    for (int i = 0; ok && i < n; i++) {
        entry key = {.name = t[i]->name}, *kp = &key;
        entry **hit = s->n_entries ? bsearch(&kp, by, s->n_entries, sizeof *by, cmp_entry_name) : NULL;
        if (!hit) {
            ok = bad(c, "tensor \"%s\" is missing", t[i]->name);
            break;
        }
        entry *e = *hit;
        if (e->used) {
            ok = bad(c, "the model has two tensors named \"%s\"", t[i]->name);
            break;
        }
        e->used = true;
        match[i] = e;
        bool same = e->rank == t[i]->shape.rank;
        for (int d = 0; same && d < e->rank; d++) same = e->dims[d] == t[i]->shape.dim[d];
        if (!same) {
            char want[NB_SHAPE_STR_LEN], got[NB_SHAPE_STR_LEN];
            shape_str(e->rank, e->dims, got, sizeof got);
            nb_shape_str(&t[i]->shape, want, sizeof want);
            ok = bad(c, "tensor \"%s\" has shape %s in the file, the model's is %s", t[i]->name, got, want);
        }
    }
    free(by);
    for (size_t i = 0; ok && i < s->n_entries; i++)
        if (!s->entries[i].used) ok = bad(c, "unexpected tensor \"%.64s\"", s->entries[i].name);
    return ok;
}

/* Reads each matched tensor's bytes into dst[i] (as floats, from little
 * endian) and checks the checksum when the file has one. */
static bool read_data(const ctx *c, sfile *s, entry **match, int n, float **dst, const char *arch) {
    uLong crc = crc32(0, Z_NULL, 0);
    if (arch) crc = crc_bytes(crc, arch, strlen(arch));
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)(match[i]->end - match[i]->begin);
        if (fseeko(s->f, (off_t)(s->data_start + match[i]->begin), SEEK_SET) != 0 ||
            fread(dst[i], 1, bytes, s->f) != bytes)
            return bad(c, "reading tensor \"%s\" failed (the file changed or ended early)", match[i]->name);
        crc = crc_bytes(crc, dst[i], bytes);
        from_le((const unsigned char *)dst[i], bytes / 4, dst[i]);
    }
    const char *want = meta_str(s, "weights_crc32");
    if (want) {
        char got[16];
        snprintf(got, sizeof got, "%08lx", crc & 0xFFFFFFFFul);
        if (strcmp(want, got) != 0)
            return bad(c, "checksum mismatch (weights_crc32 says %.16s, the contents give %s): the file is corrupt",
                       want, got);
    }
    return true;
}

/* ---- rebuilding a model from its architecture ---- */

static bool get_float(const ctx *c, const nb_json *cfg, const char *key, float *out, int layer) {
    const nb_json *v = nb__json_get(cfg, key);
    if (!v) return true; /* absent: the spec's zero, i.e. the default */
    if (v->type == NB_JSON_STRING) {
        if (!strcmp(v->string, "NaN")) *out = NAN;
        else if (!strcmp(v->string, "Infinity")) *out = INFINITY;
        else if (!strcmp(v->string, "-Infinity")) *out = -INFINITY;
        else return bad(c, "layer %d: %s is \"%.20s\", not a number", layer, key, v->string);
        return true;
    }
    /* 0x1.ffffffp127 is half an ulp past FLT_MAX: the smallest that rounds to infinity */
    if (v->type != NB_JSON_NUMBER || !(fabs(v->number) < 0x1.ffffffp127))
        return bad(c, "layer %d: %s is not a float", layer, key);
    *out = (float)v->number;
    return true;
}

static bool get_int(const ctx *c, const nb_json *cfg, const char *key, int *out, int layer) {
    const nb_json *v = nb__json_get(cfg, key);
    if (!v) return true;
    if (v->type != NB_JSON_NUMBER || v->number < INT32_MIN || v->number > INT32_MAX || v->number != floor(v->number))
        return bad(c, "layer %d: %s is not an integer", layer, key);
    *out = (int)v->number;
    return true;
}

static bool get_bool(const ctx *c, const nb_json *cfg, const char *key, bool *out, int layer) {
    const nb_json *v = nb__json_get(cfg, key);
    if (!v) return true;
    if (v->type != NB_JSON_BOOL) return bad(c, "layer %d: %s is not true or false", layer, key);
    *out = v->boolean;
    return true;
}

static bool get_str(const ctx *c, const nb_json *cfg, const char *key, char *out, size_t cap, int layer) {
    const nb_json *v = nb__json_get(cfg, key);
    if (!v) return true;
    if (v->type != NB_JSON_STRING) return bad(c, "layer %d: %s is not a string", layer, key);
    if (strlen(v->string) >= cap)
        return bad(c, "layer %d: %s \"%.40s...\" is longer than %zu bytes", layer, key, v->string, cap - 1);
    memcpy(out, v->string, strlen(v->string) + 1);
    return true;
}

static bool read_spec(const ctx *c, const nb_json *cfg, nb_layer_spec *s, int i) {
    const nb_json *reg = nb__json_get(cfg, "kernel_reg");
    if (reg && reg->type != NB_JSON_OBJECT) return bad(c, "layer %d: kernel_reg is not an object", i);
    return get_str(c, cfg, "name", s->name, sizeof s->name, i) && get_int(c, cfg, "units", &s->units, i) &&
           get_str(c, cfg, "kernel_init", s->kernel_init, sizeof s->kernel_init, i) &&
           get_bool(c, cfg, "no_bias", &s->no_bias, i) && get_float(c, reg, "l1", &s->kernel_reg.l1, i) &&
           get_float(c, reg, "l2", &s->kernel_reg.l2, i) && get_float(c, cfg, "max_norm", &s->max_norm, i) &&
           get_int(c, cfg, "max_norm_axis", &s->max_norm_axis, i) &&
           get_str(c, cfg, "activation", s->activation, sizeof s->activation, i) &&
           get_float(c, cfg, "alpha", &s->alpha, i) && get_float(c, cfg, "rate", &s->rate, i) &&
           get_float(c, cfg, "momentum", &s->momentum, i) && get_float(c, cfg, "epsilon", &s->epsilon, i) &&
           get_bool(c, cfg, "no_center", &s->no_center, i) && get_bool(c, cfg, "no_scale", &s->no_scale, i);
}

/* Floats the layer is sure to store, whatever its optional tensors: a
 * Dense's kernel, a batch norm's or Normalization's two statistics, a layer
 * norm's gamma and beta unless left out. A lower bound, so that a valid
 * file is never refused for it. */
static uint64_t floats_at_least(const nb_layer_spec *s, int features) {
    uint64_t f = (uint64_t)(features > 0 ? features : 0);
    switch (s->kind) {
    case NB_LAYER_DENSE:
        return f * (uint64_t)(s->units > 0 ? s->units : 0);
    case NB_LAYER_BATCH_NORM:
    case NB_LAYER_NORMALIZATION:
        return 2 * f;
    case NB_LAYER_LAYER_NORM:
        return (uint64_t)(!s->no_scale + !s->no_center) * f;
    default:
        return 0;
    }
}

/* The model the architecture describes, its weights freshly initialized
 * (from the saved seed, so exactly as they were before training). A layer
 * whose weights could not fit in the file's data_len bytes is refused
 * before it is made: a corrupt "units" must not allocate gigabytes. */
static nb_model *build_model(const ctx *c, const char *arch_text, uint64_t data_len) {
    char why[200];
    nb_json *arch = nb__json_parse(arch_text, strlen(arch_text), why, sizeof why);
    if (!arch) {
        bad(c, "the architecture is not valid JSON (%s)", why);
        return NULL;
    }
    nb_model *m = NULL;
    const nb_json *cls = nb__json_get(arch, "class_name"), *seed = nb__json_get(arch, "seed"),
                  *shape = nb__json_get(arch, "input_shape"), *layers = nb__json_get(arch, "layers");
    int dims[NB_MAX_RANK] = {0};
    bool ok = true;
    if (!cls || cls->type != NB_JSON_STRING || strcmp(cls->string, "Sequential") != 0)
        ok = bad(c, "the architecture is not a Sequential model");
    else if (seed && (seed->type != NB_JSON_NUMBER || !seed->is_uint))
        ok = bad(c, "the architecture's seed is not an unsigned 64-bit integer");
    else if (!shape || shape->type != NB_JSON_ARRAY || shape->count < 1 || shape->count > NB_MAX_RANK - 1)
        ok = bad(c, "the architecture has no input_shape of 1 to %d sizes", NB_MAX_RANK - 1);
    else if (!layers || layers->type != NB_JSON_ARRAY)
        ok = bad(c, "the architecture has no list of layers");
    for (size_t d = 0; ok && d < shape->count; d++) {
        const nb_json *x = &shape->items[d];
        if (x->type != NB_JSON_NUMBER || !x->is_uint || x->uint < 1 || x->uint > INT32_MAX)
            ok = bad(c, "the architecture's input_shape has a bad size");
        else dims[d] = (int)x->uint;
    }
    if (ok) {
        m = nb_model_new((int)shape->count, dims, seed ? seed->uint : 0);
        if (!m) ok = bad(c, "%s", nb_last_error());
    }
    for (size_t i = 0; ok && i < layers->count; i++) {
        const nb_json *l = &layers->items[i], *lc = nb__json_get(l, "class_name"), *cfg = nb__json_get(l, "config"),
                      *tr = nb__json_get(l, "trainable");
        nb_layer_spec spec = {0};
        int k = 0;
        if (!lc || lc->type != NB_JSON_STRING || !cfg || cfg->type != NB_JSON_OBJECT) {
            ok = bad(c, "layer %zu has no class_name or config", i);
            break;
        }
        /* nb__layer_class names every kind there is, and "?" past the last */
        bool known = false;
        for (k = 0; !known && strcmp(nb__layer_class((nb_layer_kind)k), "?") != 0; k++)
            known = strcmp(lc->string, nb__layer_class((nb_layer_kind)k)) == 0;
        k--;
        if (!known) {
            ok = bad(c, "layer %zu has unknown kind \"%.40s\"", i, lc->string);
            break;
        }
        spec.kind = (nb_layer_kind)k;
        if (tr && tr->type != NB_JSON_BOOL) {
            ok = bad(c, "layer %zu: trainable is not true or false", i);
            break;
        }
        if (!read_spec(c, cfg, &spec, (int)i)) {
            ok = false;
            break;
        }
        int out[NB_MAX_RANK];
        int out_rank = nb_model_output_dims(m, out);
        uint64_t have = 0;
        for (int t = 0; t < m->n_tensors; t++) have += m->tensors[t]->size;
        if (have + floats_at_least(&spec, out[out_rank - 1]) > data_len / 4) {
            ok = bad(c, "layer %zu (\"%s\") needs more weights than the file's %" PRIu64 " bytes of data", i,
                     spec.name, data_len);
            break;
        }
        nb_layer *layer = nb_model_add(m, &spec);
        if (!layer) {
            ok = bad(c, "layer %zu (\"%s\"): %s", i, spec.name, nb_last_error());
            break;
        }
        if (tr && !tr->boolean) nb_layer_set_trainable(layer, false);
    }
    nb__json_free(arch);
    if (!ok) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}

/* ---- loading ---- */

nb_model *nb_model_load(const char *path) {
    ctx c = {"model load", path};
    if (!path) {
        bad(&c, "no path");
        return NULL;
    }
    sfile s;
    nb_model *m = NULL;
    entry **match = NULL;
    float **dst = NULL;
    bool ok = sfile_open(&c, &s);
    const char *format = NULL, *version = NULL, *arch = NULL;
    if (ok) {
        format = meta_str(&s, "format");
        version = meta_str(&s, "nabla_version");
        arch = meta_str(&s, "architecture");
        if (!s.meta) ok = bad(&c, "no __metadata__: not saved by nabla (nb_model_load_weights reads the weights)");
        else if (!format) ok = bad(&c, "no format in __metadata__");
        else if (strcmp(format, "nabla") != 0) ok = bad(&c, "format is \"%.20s\", not \"nabla\"", format);
        else if (!version) ok = bad(&c, "no nabla_version in __metadata__");
        else if (strcmp(version, FORMAT_VERSION) != 0)
            ok = bad(&c, "nabla_version is \"%.20s\"; this nabla reads version " FORMAT_VERSION, version);
        else if (!arch) ok = bad(&c, "no architecture in __metadata__");
        else if (!meta_str(&s, "weights_crc32")) ok = bad(&c, "no weights_crc32 in __metadata__");
    }
    if (ok) ok = (m = build_model(&c, arch, s.data_len)) != NULL;
    if (ok) {
        match = calloc((size_t)m->n_tensors + 1, sizeof *match);
        dst = calloc((size_t)m->n_tensors + 1, sizeof *dst);
        if (!match || !dst) ok = bad(&c, "out of memory");
    }
    if (ok) ok = match_tensors(&c, &s, m->tensors, m->n_tensors, match);
    if (ok) {
        for (int i = 0; i < m->n_tensors; i++) dst[i] = m->tensors[i]->data; /* a fresh model: fill in place */
        ok = read_data(&c, &s, match, m->n_tensors, dst, arch);
    }
    free(match);
    free(dst);
    sfile_close(&s);
    if (!ok) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}

nb_status nb_model_load_weights(nb_model *m, const char *path) {
    ctx c = {"model load weights", path};
    if (!m || !path) {
        bad(&c, "%s", !m ? "model is NULL" : "no path");
        return NB_ERROR;
    }
    sfile s;
    const int n = m->n_tensors;
    entry **match = calloc((size_t)n + 1, sizeof *match);
    float **dst = calloc((size_t)n + 1, sizeof *dst);
    float *stage = NULL;
    bool ok = match && dst ? sfile_open(&c, &s) : (memset(&s, 0, sizeof s), bad(&c, "out of memory"));
    if (ok) ok = match_tensors(&c, &s, m->tensors, n, match);
    /* read everything aside first: a corrupt file must leave m as it was */
    if (ok) {
        size_t total = 0;
        for (int i = 0; i < n; i++) total += m->tensors[i]->size;
        stage = malloc((total ? total : 1) * sizeof *stage);
        if (!stage) ok = bad(&c, "out of memory for %zu floats", total);
        for (size_t i = 0, at = 0; ok && i < (size_t)n; at += m->tensors[i]->size, i++) dst[i] = stage + at;
    }
    if (ok) ok = read_data(&c, &s, match, n, dst, meta_str(&s, "architecture"));
    if (ok)
        for (int i = 0; i < n; i++) memcpy(m->tensors[i]->data, dst[i], m->tensors[i]->size * sizeof(float));
    free(stage);
    free(match);
    free(dst);
    sfile_close(&s);
    return ok ? NB_OK : NB_ERROR;
}
