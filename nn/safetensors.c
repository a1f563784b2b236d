/* nn/safetensors.c — the safetensors container (see nn/safetensors.h). */
#include "nn/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "graph/file.h"
#include "graph/internal.h"

static bool st_fail(nb_error_kind kind, const char *op, const char *path, const char *fmt, va_list ap) {
    char what[240];
    vsnprintf(what, sizeof what, fmt, ap); /* before setting the error: fmt may read nb_last_error() */
    const char *p = path ? path : "(null)";
    size_t n = strlen(p);
    /* keep the end of a long path: the problem must fit in the message too */
    if (n > 100) nb__set_error(kind, "%s '...%s': %s", op, p + n - 97, what);
    else nb__set_error(kind, "%s '%s': %s", op, p, what);
    return false;
}

bool nb__st_fail(const char *op, const char *path, const char *fmt, ...) {
    /* a fault in a file being read is the file's; in one being written, the caller's */
    const nb_error_kind kind = strstr(op, "load") ? NB_ERR_CORRUPT : NB_ERR_INVALID_ARGUMENT;
    va_list ap;
    va_start(ap, fmt);
    st_fail(kind, op, path, fmt, ap);
    va_end(ap);
    return false;
}

bool nb__st_fail_kind(nb_error_kind kind, const char *op, const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    st_fail(kind, op, path, fmt, ap);
    va_end(ap);
    return false;
}

bool nb__utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) k = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) k = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) k = 3, cp = c & 0x07;
        else return false;
        if (len - i <= k) return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        /* overlong forms, surrogates, past U+10FFFF */
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += k + 1;
    }
    return true;
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

uint32_t nb__crc_bytes(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = p;
    uLong c = crc;
    while (n) {
        uInt k = n > (1u << 30) ? 1u << 30 : (uInt)n;
        c = crc32(c, b, k);
        b += k;
        n -= k;
    }
    return (uint32_t)c;
}

#define STAGE_FLOATS 4096

uint32_t nb__crc_tensors(uint32_t crc, nb_tensor *const *t, int n) {
    unsigned char stage[4 * STAGE_FLOATS];
    for (int i = 0; i < n; i++)
        for (size_t at = 0; at < t[i]->size; at += STAGE_FLOATS) {
            size_t k = t[i]->size - at < STAGE_FLOATS ? t[i]->size - at : STAGE_FLOATS;
            to_le(t[i]->data + at, k, stage);
            crc = nb__crc_bytes(crc, stage, 4 * k);
        }
    return crc;
}

/* ---- writing ---- */

static bool key_ok(const char *op, const char *path, const char *what, int i, const char *n) {
    if (!n || !n[0] || strcmp(n, "__metadata__") == 0 || !nb__utf8_valid(n, strlen(n)))
        return nb__st_fail(op, path, "%s %d has the name \"%.64s\", which cannot key a safetensors entry%s", what, i,
                           n ? n : "(null)", n && !nb__utf8_valid(n, strlen(n)) ? " (not valid UTF-8)" : "");
    return true;
}

/* {"__metadata__":{...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...} */
static json_t *header_json(const char *op, const char *path, const char *const *keys, const char *const *values,
                           int n_meta, nb_tensor *const *t, int n) {
    json_t *h = json_object(), *meta = n_meta ? json_object() : NULL;
    bool ok = h && (!n_meta || (meta && json_object_set_new(h, "__metadata__", meta) == 0));
    if (!h) json_decref(meta); /* json_object_set_new frees meta itself when it fails */
    for (int i = 0; ok && i < n_meta; i++) {
        bool good = key_ok(op, path, "metadata key", i, keys[i]);
        if (good && (!values[i] || !nb__utf8_valid(values[i], strlen(values[i]))))
            good = nb__st_fail(op, path, "metadata \"%.40s\" is NULL or not valid UTF-8", keys[i]);
        if (!good) {
            json_decref(h);
            return NULL;
        }
        ok = json_object_set_new(meta, keys[i], json_string(values[i])) == 0;
    }
    uint64_t at = 0;
    for (int i = 0; ok && i < n; i++) {
        bool good = key_ok(op, path, "tensor", i, t[i]->name);
        if (good && json_object_get(h, t[i]->name))
            good = nb__st_fail(op, path, "two tensors are named \"%s\"", t[i]->name);
        if (!good) {
            json_decref(h);
            return NULL;
        }
        json_t *shape = json_array(), *e = json_object();
        for (int d = 0; shape && d < t[i]->shape.rank; d++) json_array_append_new(shape, json_integer(t[i]->shape.dim[d]));
        uint64_t end = at + 4 * (uint64_t)t[i]->size;
        ok = e && shape && json_object_set_new(e, "dtype", json_string("F32")) == 0 &&
             json_object_set(e, "shape", shape) == 0 &&
             json_object_set_new(e, "data_offsets", json_pack("[II]", (json_int_t)at, (json_int_t)end)) == 0 &&
             json_object_set(h, t[i]->name, e) == 0;
        json_decref(shape);
        json_decref(e);
        at = end;
    }
    if (!ok) {
        json_decref(h);
        nb__st_fail_kind(NB_ERR_OUT_OF_MEMORY, op, path, "out of memory");
        return NULL;
    }
    return h;
}

static bool write_all(FILE *f, const char *h, size_t len, nb_tensor *const *t, int n) {
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)((uint64_t)len >> (8 * i));
    if (fwrite(prefix, 1, 8, f) != 8 || fwrite(h, 1, len, f) != len) return false;
    unsigned char stage[4 * STAGE_FLOATS];
    for (int i = 0; i < n; i++)
        for (size_t at = 0; at < t[i]->size; at += STAGE_FLOATS) {
            size_t k = t[i]->size - at < STAGE_FLOATS ? t[i]->size - at : STAGE_FLOATS;
            to_le(t[i]->data + at, k, stage);
            if (fwrite(stage, 4, k, f) != k) return false;
        }
    return true;
}

bool nb__st_write(const char *op, const char *path, const char *const *meta_keys, const char *const *meta_values,
                  int n_meta, nb_tensor *const *t, int n) {
    json_t *h = header_json(op, path, meta_keys, meta_values, n_meta, t, n);
    if (!h) return false;
    char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!text) return nb__st_fail_kind(NB_ERR_OUT_OF_MEMORY, op, path, "out of memory");
    size_t len = strlen(text), padded = len + (8 - (8 + len) % 8) % 8;
    if (padded > NB_ST_HEADER_MAX) {
        free(text);
        return nb__st_fail(op, path, "the header would be %zu bytes, over the format's 100 MB", padded);
    }
    char *buf = realloc(text, padded + 1);
    if (!buf) {
        free(text);
        return nb__st_fail_kind(NB_ERR_OUT_OF_MEMORY, op, path, "out of memory");
    }
    memset(buf + len, ' ', padded - len);
    nb_atomic_file out;
    char err[256];
    bool ok = nb__atomic_open(&out, path, err, sizeof err);
    ok = ok && nb__atomic_commit(&out, write_all(out.f, buf, padded, t, n), err, sizeof err);
    free(buf);
    return ok ? true : nb__st_fail_kind(nb__errno_kind(errno), op, path, "%s", err);
}

/* ---- reading ---- */

#define BAD(...) nb__st_fail(s->op, s->path, __VA_ARGS__)
#define BADK(kind, ...) nb__st_fail_kind(kind, s->op, s->path, __VA_ARGS__)

static void shape_str(int rank, const int *dims, char *buf, size_t len) {
    nb_shape sh = {.rank = rank};
    memcpy(sh.dim, dims, (size_t)rank * sizeof(int));
    nb_shape_str(&sh, buf, len);
}

/* One header entry: {"dtype":"F32","shape":[..],"data_offsets":[b,e]}. */
static bool read_entry(const nb_st_file *s, const char *name, json_t *v, nb_st_entry *e) {
    json_t *dtype = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    e->name = name;
    if (!json_is_object(v)) return BAD("tensor \"%.64s\" is not an object in the header", name);
    if (!json_is_string(dtype)) return BAD("tensor \"%.64s\" has no dtype", name);
    if (strcmp(json_string_value(dtype), "F32") != 0)
        return BADK(NB_ERR_UNSUPPORTED, "tensor \"%.64s\" has dtype %.16s; nabla reads F32 only", name, json_string_value(dtype));
    if (!json_is_array(shape)) return BAD("tensor \"%.64s\" has no shape", name);
    if (json_array_size(shape) > NB_MAX_RANK)
        return BADK(NB_ERR_UNSUPPORTED, "tensor \"%.64s\" has rank %zu; nabla tensors have at most %d", name, json_array_size(shape),
                   NB_MAX_RANK);
    uint64_t elems = 1;
    e->rank = (int)json_array_size(shape);
    for (int d = 0; d < e->rank; d++) {
        json_t *x = json_array_get(shape, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
            return BAD("tensor \"%.64s\" has a shape that is not a list of sizes", name);
        uint64_t u = (uint64_t)json_integer_value(x);
        e->dims[d] = (int)u;
        if (u && elems > UINT64_MAX / 4 / u) return BAD("tensor \"%.64s\" has a shape too large to address", name);
        elems *= u;
    }
    json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
    if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(b) || !json_is_integer(en) ||
        json_integer_value(b) < 0 || json_integer_value(en) < 0)
        return BAD("tensor \"%.64s\" has no data_offsets [begin, end]", name);
    e->begin = (uint64_t)json_integer_value(b);
    e->end = (uint64_t)json_integer_value(en);
    if (e->end < e->begin)
        return BAD("tensor \"%.64s\" has data_offsets [%" PRIu64 ",%" PRIu64 "] that end before they begin", name,
                   e->begin, e->end);
    if (e->end - e->begin != 4 * elems) {
        char sh[NB_SHAPE_STR_LEN];
        shape_str(e->rank, e->dims, sh, sizeof sh);
        return BAD("tensor \"%.64s\": data_offsets [%" PRIu64 ",%" PRIu64 "] hold %" PRIu64
                   " bytes, shape %s needs %" PRIu64, name, e->begin, e->end, e->end - e->begin, sh, 4 * elems);
    }
    return true;
}

static int cmp_begin(const void *a, const void *b) {
    const nb_st_entry *x = *(nb_st_entry *const *)a, *y = *(nb_st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The data must be exactly the tensors, back to back, in some order: no
 * byte shared, none unclaimed, nothing after the last. */
static bool check_layout(nb_st_file *s) {
    for (size_t i = 0; i < s->n_entries; i++)
        if (s->entries[i].end > s->data_len)
            return BAD("tensor \"%.64s\" ends at byte %" PRIu64 " of the data, which has %" PRIu64 " (truncated?)",
                       s->entries[i].name, s->entries[i].end, s->data_len);
    nb_st_entry **by = malloc((s->n_entries ? s->n_entries : 1) * sizeof *by);
    if (!by) return BADK(NB_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < s->n_entries; i++) by[i] = &s->entries[i];
    qsort(by, s->n_entries, sizeof *by, cmp_begin);
    uint64_t at = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < s->n_entries; i++) {
        if (by[i]->begin < at)
            ok = BAD("tensors \"%.64s\" and \"%.64s\" overlap in the data", by[i - 1]->name, by[i]->name);
        else if (by[i]->begin > at)
            ok = BAD("data bytes %" PRIu64 " to %" PRIu64 " belong to no tensor", at, by[i]->begin);
        at = by[i]->end;
    }
    free(by);
    if (ok && at != s->data_len) ok = BAD("the file is %" PRIu64 " bytes longer than its header says", s->data_len - at);
    return ok;
}

static bool open_checked(nb_st_file *s) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer before the
     * regular-file check refuses it (regular files ignore the flag) */
    int fd = open(s->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return BADK(NB_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return BADK(NB_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return BADK(NB_ERR_IO, "not a regular file");
    }
    s->f = fdopen(fd, "rb");
    if (!s->f) {
        close(fd);
        return BADK(NB_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const uint64_t size = (uint64_t)st.st_size;
    unsigned char prefix[8];
    if (size < 8 || fread(prefix, 1, 8, s->f) != 8)
        return BAD("the file is %" PRIu64 " bytes, too short for a safetensors header", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | prefix[i];
    if (n > NB_ST_HEADER_MAX) return BAD("header length %" PRIu64 " is absurd (over 100 MB): not a safetensors file", n);
    if (n > size - 8) return BAD("header length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes)", n, size);
    s->data_start = 8 + n;
    s->data_len = size - 8 - n;
    char *text = malloc(n ? n : 1);
    if (!text) return BADK(NB_ERR_OUT_OF_MEMORY, "out of memory for a header of %" PRIu64 " bytes", n);
    if (fread(text, 1, n, s->f) != n) {
        free(text);
        return BADK(NB_ERR_IO, "reading the header failed");
    }
    size_t first = 0; /* JSON may start with whitespace; then it must be an object */
    while (first < n && text[first] && strchr(" \t\r\n", text[first])) first++;
    if (first == n || text[first] != '{') {
        free(text);
        return BAD("the header is not a JSON object: not a safetensors file");
    }
    if (!nb__json_small_enough(text, n)) {
        free(text);
        return BAD("the header holds over %d JSON values: not a model nabla wrote", NB_JSON_VALUES_MAX);
    }
    json_error_t err;
    s->header = json_loadb(text, n, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (!s->header) return BAD("the header is not valid JSON (byte %d: %s)", err.position, err.text);
    if (!json_is_object(s->header)) return BAD("the header is not a JSON object");
    size_t count = json_object_size(s->header);
    s->entries = calloc(count ? count : 1, sizeof *s->entries);
    if (!s->entries) return BADK(NB_ERR_OUT_OF_MEMORY, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(s->header, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (json_is_null(v)) continue; /* the reference reads null as no metadata */
            bool strings = json_is_object(v);
            const char *k2;
            json_t *v2;
            if (strings) json_object_foreach(v, k2, v2) strings = strings && json_is_string(v2);
            if (!strings) return BAD("__metadata__ must map strings to strings");
            s->meta = v;
            continue;
        }
        if (!read_entry(s, key, v, &s->entries[s->n_entries++])) return false;
    }
    return check_layout(s);
}

bool nb__json_small_enough(const char *text, size_t n) {
    size_t values = 1;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') i++; /* an escaped character, whatever it is */
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ',' || c == ':' || c == '[' || c == '{') {
            if (++values > NB_JSON_VALUES_MAX) return false;
        }
    }
    return true;
}

bool nb__st_open(nb_st_file *s, const char *op, const char *path) {
    memset(s, 0, sizeof *s);
    s->op = op;
    s->path = path;
    if (!path) return BAD("no path");
    if (open_checked(s)) return true;
    nb__st_close(s);
    return false;
}

void nb__st_close(nb_st_file *s) {
    if (s->f) fclose(s->f);
    json_decref(s->header);
    free(s->entries);
    const char *op = s->op, *path = s->path;
    memset(s, 0, sizeof *s);
    s->op = op;
    s->path = path;
}

const char *nb__st_meta(const nb_st_file *s, const char *key) {
    return json_string_value(json_object_get(s->meta, key)); /* NULL for no metadata or no key */
}

nb_st_entry *nb__st_find(const nb_st_file *s, const char *name) {
    for (size_t i = 0; i < s->n_entries; i++)
        if (strcmp(s->entries[i].name, name) == 0) return &s->entries[i];
    return NULL;
}

bool nb__st_read(nb_st_file *s, const nb_st_entry *e, float *dst, uint32_t *crc) {
    size_t bytes = (size_t)(e->end - e->begin);
    if (fseeko(s->f, (off_t)(s->data_start + e->begin), SEEK_SET) != 0 || fread(dst, 1, bytes, s->f) != bytes)
        return BADK(NB_ERR_IO, "reading tensor \"%s\" failed (the file changed or ended early)", e->name);
    if (crc) *crc = nb__crc_bytes(*crc, dst, bytes);
    from_le((const unsigned char *)dst, bytes / 4, dst);
    return true;
}
