/* nn/safetensors.h — the safetensors container: named float32 tensors and
 * string metadata in one file, knowing nothing of models. Internal.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * (padded with spaces so the data starts at a multiple of 8), then the
 * data. The header maps each tensor name to {"dtype","shape",
 * "data_offsets":[begin,end]} (offsets into the data) and holds string
 * metadata under "__metadata__". The reader checks everything the format
 * promises: the prefix, the JSON (through jansson, duplicate keys refused),
 * each entry (F32 only), and a layout with no byte shared, none unclaimed
 * and nothing after the last tensor.
 *
 * Every failure sets nb_last_error to "<op> '<path>': <problem>", op being
 * the caller's verb ("model load"), so messages name the file.
 */
#ifndef NABLA_NN_SAFETENSORS_H
#define NABLA_NN_SAFETENSORS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "nabla/tensor.h"

/* The reference implementation's limit: a longer header is not a model,
 * and it is refused before anything is parsed. */
#define NB_ST_HEADER_MAX 100000000ull

/* The most JSON values nabla parses from one document (a header, or the
 * architecture inside it): a parsed value costs about 50 bytes against 2 in
 * the text ("0,"), so a 100 MB header of small numbers would cost 3 GB
 * before any check. A million values (~50 MB) is 20 times what a model of
 * 10,000 layers needs. */
#define NB_JSON_VALUES_MAX 1000000

/* Whether the JSON text (n bytes) holds at most NB_JSON_VALUES_MAX values,
 * counted without parsing: one per comma, colon and opening bracket
 * outside strings, plus one. */
bool nb__json_small_enough(const char *text, size_t n);

/* Sets nb_last_error to "<op> '<path>': <fmt...>" (a long path keeps its
 * end) and returns false. */
bool nb__st_fail(const char *op, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with the error kind given (nb__st_fail: corrupt for an op that
 * loads, invalid argument otherwise). */
bool nb__st_fail_kind(nb_error_kind kind, const char *op, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Whether the len bytes at s are valid UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
bool nb__utf8_valid(const char *s, size_t len);

/* CRC-32 (zlib's) of n bytes continuing crc, and of the tensors' data as
 * little-endian float32, in the order given. */
uint32_t nb__crc_bytes(uint32_t crc, const void *p, size_t n);
uint32_t nb__crc_tensors(uint32_t crc, nb_tensor *const *t, int n);

typedef struct nb_st_entry {
    const char *name; /* owned by the header */
    int rank;
    int dims[NB_MAX_RANK];
    uint64_t begin, end; /* byte range in the data */
    bool used;           /* for callers that pair entries with tensors */
} nb_st_entry;

typedef struct nb_st_file {
    const char *op, *path;
    FILE *f;
    json_t *header;
    json_t *meta; /* __metadata__ (borrowed from header), or NULL */
    nb_st_entry *entries;
    size_t n_entries;
    uint64_t data_start, data_len;
} nb_st_file;

/* Opens path and checks the container (not what any model needs). false
 * with nb_last_error set; s is then closed already. */
bool nb__st_open(nb_st_file *s, const char *op, const char *path);
void nb__st_close(nb_st_file *s);
/* The metadata value under key, or NULL (every value is a string). */
const char *nb__st_meta(const nb_st_file *s, const char *key);
/* The entry named name, or NULL. */
nb_st_entry *nb__st_find(const nb_st_file *s, const char *name);
/* Reads e's data into dst (e's element count of floats), continuing *crc
 * over the raw bytes when crc is not NULL. */
bool nb__st_read(nb_st_file *s, const nb_st_entry *e, float *dst, uint32_t *crc);

/* Writes n tensors (F32, in the order given, keyed by their names) and the
 * n_meta key/value strings, atomically (graph/file.h). Names must be
 * non-empty, unique, not "__metadata__" and UTF-8, and so must the
 * metadata. false with nb_last_error set; any previous file stays. */
bool nb__st_write(const char *op, const char *path, const char *const *meta_keys, const char *const *meta_values,
                  int n_meta, nb_tensor *const *t, int n);

#endif
