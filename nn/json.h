/* nn/json.h — the small JSON reader and writer behind saved models.
 *
 * The reader parses a whole document into a tree and is strict, because its
 * input is a file that may be corrupt: RFC 8259 grammar only (no comments,
 * no trailing commas, no NaN), valid UTF-8, no duplicate keys in an object,
 * no "\u0000" in a string (strings come back as C strings), nesting at most
 * NB_JSON_MAX_DEPTH deep. Numbers are read in the C locale whatever the
 * program's locale, and integers are kept exactly (offsets past 2^53).
 *
 * The writer appends to a growing buffer; the first failed allocation marks
 * it failed and makes every later call do nothing, so a caller checks once.
 */
#ifndef NABLA_NN_JSON_H
#define NABLA_NN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NB_JSON_MAX_DEPTH 32

typedef enum nb_json_type {
    NB_JSON_NULL,
    NB_JSON_BOOL,
    NB_JSON_NUMBER,
    NB_JSON_STRING,
    NB_JSON_ARRAY,
    NB_JSON_OBJECT
} nb_json_type;

typedef struct nb_json {
    nb_json_type type;
    bool boolean;          /* BOOL */
    double number;         /* NUMBER */
    bool is_uint;          /* NUMBER written as a plain integer in [0, 2^64) ... */
    uint64_t uint;         /* ... with this exact value */
    char *string;          /* STRING: NUL-terminated, no NUL inside */
    size_t count;          /* ARRAY, OBJECT: number of items */
    struct nb_json *items; /* ARRAY, OBJECT: the values */
    char **keys;           /* OBJECT: the keys, keys[i] for items[i] */
} nb_json;

/* Parses the len bytes at text (not NUL-terminated; whitespace may follow
 * the value). Returns the tree, owned by the caller (nb__json_free), or NULL
 * with a message in err (at most err_len bytes, "byte 12: expected ':'")
 * for invalid input or when memory runs out. */
nb_json *nb__json_parse(const char *text, size_t len, char *err, size_t err_len);
void nb__json_free(nb_json *j);

/* The value of key in object j; NULL if j is not an object or lacks it. */
const nb_json *nb__json_get(const nb_json *j, const char *key);

/* Whether the len bytes at s are valid UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
bool nb__utf8_valid(const char *s, size_t len);

typedef struct nb_json_writer {
    char *buf; /* NUL-terminated when not failed; owned, free() it */
    size_t len, cap;
    bool failed;
} nb_json_writer;

/* Raw text, as is. */
void nb__jw_raw(nb_json_writer *w, const char *s);
/* s as a JSON string, quoted and escaped (the bytes are copied, so s should
 * be UTF-8 for the result to be JSON). */
void nb__jw_string(nb_json_writer *w, const char *s);
/* v with the fewest digits that read back to the same float (9 at most);
 * NaN and the infinities, which JSON lacks, as the strings "NaN",
 * "Infinity" and "-Infinity" (Python's spellings). */
void nb__jw_float(nb_json_writer *w, float v);
void nb__jw_int(nb_json_writer *w, long long v);
void nb__jw_uint(nb_json_writer *w, uint64_t v);
void nb__jw_bool(nb_json_writer *w, bool v);

#endif
