/* nn/json.c — a strict JSON reader and a small writer, for saved models. */
#include "nn/json.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the C locale, for numbers ---- */

/* strtod and printf follow LC_NUMERIC: a program that called
 * setlocale(LC_ALL, "") in a comma-decimal locale would otherwise write
 * "0,5" and misread "0.5". The C locale object is made once and kept. */
static locale_t c_loc;
static pthread_once_t c_loc_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static locale_t enter_c_locale(void) {
    pthread_once(&c_loc_once, make_c_locale);
    return c_loc ? uselocale(c_loc) : (locale_t)0;
}

static void leave_c_locale(locale_t old) {
    if (old) uselocale(old);
}

/* ---- UTF-8 ---- */

bool nb__utf8_valid(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07, min = 0x10000;
        else return false; /* a continuation byte, C0/C1 (overlong) or F5..FF */
        if (len - i - 1 < (size_t)n) return false;
        for (int k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += (size_t)n + 1;
    }
    return true;
}

/* ---- reader ---- */

typedef struct parser {
    const char *s;
    size_t pos, len;
    char *err;
    size_t err_len;
} parser;

static bool fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(parser *p, const char *fmt, ...) {
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (p->err && p->err_len) snprintf(p->err, p->err_len, "byte %zu: %s", p->pos, what);
    return false;
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* "'x'" for a printable byte, "byte 0xNN" otherwise, for messages. */
static const char *show(char c, char buf[16]) {
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7F) snprintf(buf, 16, "'%c'", c);
    else snprintf(buf, 16, "byte 0x%02x", u);
    return buf;
}

static int hex4(const char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | d;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* At the opening quote; on success *out is a malloc'd C string. */
static bool parse_string(parser *p, char **out) {
    size_t start = ++p->pos, end = start;
    /* find the closing quote first: the decoded string is never longer */
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return fail(p, "unterminated string");
    char *o = malloc(end - start + 1);
    if (!o) return fail(p, "out of memory");
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            free(o);
            return fail(p, "control character 0x%02x in a string", c);
        }
        if (c != '\\') {
            o[n++] = (char)c;
            p->pos++;
            continue;
        }
        char e = p->s[p->pos + 1]; /* end is past it: the scan above skipped it */
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            o[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            p->pos += 2;
            continue;
        }
        if (e != 'u') {
            char b[16];
            free(o);
            return fail(p, "bad escape \\%s in a string", show(e, b));
        }
        int cp = p->pos + 6 <= end ? hex4(p->s + p->pos + 2) : -1;
        if (cp < 0) {
            free(o);
            return fail(p, "bad \\u escape");
        }
        p->pos += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = p->pos + 6 <= end && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u'
                         ? hex4(p->s + p->pos + 2)
                         : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) {
                free(o);
                return fail(p, "unpaired surrogate \\u%04x", cp);
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p->pos += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            free(o);
            return fail(p, "unpaired surrogate \\u%04x", cp);
        } else if (cp == 0) {
            free(o);
            return fail(p, "\\u0000 in a string");
        }
        n += put_utf8(o + n, (unsigned)cp);
    }
    o[n] = '\0';
    p->pos = end + 1;
    *out = o;
    return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static bool parse_number(parser *p, nb_json *j) {
    const size_t start = p->pos;
    const char *s = p->s;
    size_t i = start;
    bool plain = true;
    if (i < p->len && s[i] == '-') i++, plain = false;
    if (i < p->len && s[i] == '0') i++;
    else if (i < p->len && s[i] >= '1' && s[i] <= '9')
        while (i < p->len && is_digit(s[i])) i++;
    else return fail(p, "bad number");
    if (i < p->len && s[i] == '.') {
        plain = false;
        if (++i >= p->len || !is_digit(s[i])) return fail(p, "bad number: no digit after '.'");
        while (i < p->len && is_digit(s[i])) i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        plain = false;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || !is_digit(s[i])) return fail(p, "bad number: no digit in the exponent");
        while (i < p->len && is_digit(s[i])) i++;
    }
    char tok[512];
    if (i - start >= sizeof tok) return fail(p, "number of %zu characters is too long", i - start);
    memcpy(tok, s + start, i - start);
    tok[i - start] = '\0';
    j->type = NB_JSON_NUMBER;
    j->number = strtod(tok, NULL); /* in the C locale: nb__json_parse set it */
    if (!isfinite(j->number)) return fail(p, "number %s is out of range", tok);
    if (plain) {
        uint64_t v = 0;
        j->is_uint = true;
        for (size_t k = 0; tok[k]; k++) {
            unsigned d = (unsigned)(tok[k] - '0');
            if (v > (UINT64_MAX - d) / 10) {
                j->is_uint = false;
                break;
            }
            v = v * 10 + d;
        }
        j->uint = j->is_uint ? v : 0;
    }
    p->pos = i;
    return true;
}

static bool parse_value(parser *p, nb_json *j, int depth);

static bool grow(nb_json *j, size_t *cap, bool keys) {
    if (j->count < *cap) return true;
    size_t c = *cap ? 2 * *cap : 4;
    nb_json *items = realloc(j->items, c * sizeof *items);
    if (!items) return false;
    j->items = items;
    if (keys) {
        char **k = realloc(j->keys, c * sizeof *k);
        if (!k) return false;
        j->keys = k;
    }
    *cap = c;
    return true;
}

static int cmp_keys(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorting a copy of the key pointers finds a duplicate in n log n: a
 * header may have thousands of tensors. */
static bool check_duplicates(parser *p, const nb_json *j) {
    if (j->count < 2) return true;
    char **k = malloc(j->count * sizeof *k);
    if (!k) return fail(p, "out of memory");
    memcpy(k, j->keys, j->count * sizeof *k);
    qsort(k, j->count, sizeof *k, cmp_keys);
    for (size_t i = 1; i < j->count; i++)
        if (strcmp(k[i - 1], k[i]) == 0) {
            bool r = fail(p, "duplicate key \"%.60s\"", k[i]);
            free(k);
            return r;
        }
    free(k);
    return true;
}

/* The tree stays consistent while it grows (count counts only items whose
 * fields are set), so on failure the caller frees it whole. */
static bool parse_container(parser *p, nb_json *j, int depth, bool object) {
    const char close = object ? '}' : ']';
    size_t cap = 0;
    j->type = object ? NB_JSON_OBJECT : NB_JSON_ARRAY;
    if (depth >= NB_JSON_MAX_DEPTH) return fail(p, "nested deeper than %d", NB_JSON_MAX_DEPTH);
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return true;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a key string");
            if (!parse_string(p, &key)) return false;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                return fail(p, "expected ':'");
            }
            p->pos++;
        }
        if (!grow(j, &cap, object)) {
            free(key);
            return fail(p, "out of memory");
        }
        memset(&j->items[j->count], 0, sizeof j->items[0]);
        if (object) j->keys[j->count] = key;
        j->count++;
        if (!parse_value(p, &j->items[j->count - 1], depth + 1)) return false;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unexpected end inside %s", object ? "an object" : "an array");
        char c = p->s[p->pos++];
        if (c == close) break;
        if (c != ',') {
            char b[16];
            p->pos--;
            return fail(p, "expected ',' or '%c', got %s", close, show(c, b));
        }
    }
    return object ? check_duplicates(p, j) : true;
}

static bool literal(parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        char b[16];
        return fail(p, "unexpected %s", show(p->s[p->pos], b));
    }
    p->pos += n;
    return true;
}

static bool parse_value(parser *p, nb_json *j, int depth) {
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end, expected a value");
    switch (p->s[p->pos]) {
    case '{':
        return parse_container(p, j, depth, true);
    case '[':
        return parse_container(p, j, depth, false);
    case '"':
        j->type = NB_JSON_STRING;
        return parse_string(p, &j->string);
    case 't':
        j->type = NB_JSON_BOOL;
        j->boolean = true;
        return literal(p, "true");
    case 'f':
        j->type = NB_JSON_BOOL;
        return literal(p, "false");
    case 'n':
        return literal(p, "null");
    default:
        if (p->s[p->pos] == '-' || is_digit(p->s[p->pos])) return parse_number(p, j);
        char b[16];
        return fail(p, "unexpected %s, expected a value", show(p->s[p->pos], b));
    }
}

static void free_contents(nb_json *j) {
    free(j->string);
    for (size_t i = 0; i < j->count; i++) {
        free_contents(&j->items[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
}

void nb__json_free(nb_json *j) {
    if (!j) return;
    free_contents(j);
    free(j);
}

nb_json *nb__json_parse(const char *text, size_t len, char *err, size_t err_len) {
    parser p = {.s = text, .len = len, .err = err, .err_len = err_len};
    if (err && err_len) err[0] = '\0';
    if (!text) {
        fail(&p, "no text");
        return NULL;
    }
    if (!nb__utf8_valid(text, len)) {
        fail(&p, "not valid UTF-8");
        return NULL;
    }
    nb_json *j = calloc(1, sizeof *j);
    if (!j) {
        fail(&p, "out of memory");
        return NULL;
    }
    locale_t old = enter_c_locale();
    bool ok = parse_value(&p, j, 0);
    leave_c_locale(old);
    if (ok) {
        skip_ws(&p);
        if (p.pos < p.len) {
            char b[16];
            ok = fail(&p, "%s after the end of the document", show(p.s[p.pos], b));
        }
    }
    if (!ok) {
        nb__json_free(j);
        return NULL;
    }
    return j;
}

const nb_json *nb__json_get(const nb_json *j, const char *key) {
    if (!j || j->type != NB_JSON_OBJECT || !key) return NULL;
    for (size_t i = 0; i < j->count; i++)
        if (strcmp(j->keys[i], key) == 0) return &j->items[i];
    return NULL;
}

/* ---- writer ---- */

static bool reserve(nb_json_writer *w, size_t n) {
    if (w->failed) return false;
    if (w->len + n + 1 <= w->cap) return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n + 1) cap *= 2;
    char *b = realloc(w->buf, cap);
    if (!b) {
        w->failed = true;
        return false;
    }
    w->buf = b;
    w->cap = cap;
    return true;
}

static void put(nb_json_writer *w, const char *s, size_t n) {
    if (!reserve(w, n)) return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

void nb__jw_raw(nb_json_writer *w, const char *s) { put(w, s, strlen(s)); }

void nb__jw_string(nb_json_writer *w, const char *s) {
    put(w, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        const char *named = *c == '"' ? "\\\"" : *c == '\\' ? "\\\\" : *c == '\n' ? "\\n" : *c == '\t' ? "\\t"
                          : *c == '\r' ? "\\r" : *c == '\b' ? "\\b" : *c == '\f' ? "\\f" : NULL;
        if (named) put(w, named, 2);
        else if (*c < 0x20) put(w, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", *c));
        else put(w, (const char *)c, 1);
    }
    put(w, "\"", 1);
}

void nb__jw_float(nb_json_writer *w, float v) {
    if (!isfinite(v)) {
        nb__jw_raw(w, isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    char b[32];
    int n = 0;
    locale_t old = enter_c_locale();
    /* the shortest that reads back bit for bit: 0.001f is "0.001", not
     * "0.00100000005"; 9 significant digits always do */
    for (int digits = 1; digits <= 9; digits++) {
        n = snprintf(b, sizeof b, "%.*g", digits, (double)v);
        float back = strtof(b, NULL);
        if (memcmp(&back, &v, sizeof v) == 0) break;
    }
    leave_c_locale(old);
    put(w, b, (size_t)n);
}

void nb__jw_int(nb_json_writer *w, long long v) {
    char b[32];
    put(w, b, (size_t)snprintf(b, sizeof b, "%lld", v));
}

void nb__jw_uint(nb_json_writer *w, uint64_t v) {
    char b[32];
    put(w, b, (size_t)snprintf(b, sizeof b, "%llu", (unsigned long long)v));
}

void nb__jw_bool(nb_json_writer *w, bool v) { nb__jw_raw(w, v ? "true" : "false"); }
