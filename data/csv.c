/* data/csv.c — numeric CSV files: one example per line, one label column.
 *
 * Deliberately small: commas only, no quoting, numbers only, read in the C
 * locale whatever locale the program has set (a comma-decimal locale would
 * otherwise refuse "0.5", and a comma there is a separator anyway).
 * Whatever does not fit is refused with the file, line and field, since a
 * silently skipped or zero-filled field would train a model on data the
 * user never had.
 */
#define _GNU_SOURCE  // strtof_l
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/internal.h"
#include "graph/internal.h"
#include "nabla/data.h"

/* Integer labels up to this many are class indices; larger ones make the
 * data regression targets (n_classes 0): a label of 16,777,215 once made a
 * 16.8-million-class problem, whose output layer alone would take 5 GB. */
#define CSV_MAX_CLASSES 65536

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Fields on a line: commas + 1. */
static int count_fields(const char *s) {
    int k = 1;
    for (; *s; s++) k += *s == ',';
    return k;
}

/* Parses the fields of line (modified in place) into vals[0..k).
 * Returns -1 (error set) on a field that is not a finite number. */
static int parse_fields(char *line, int k, float *vals, locale_t c_locale, const char *path,
                        long lineno) {
    char *p = line;
    for (int j = 0; j < k; j++) {
        char *comma = strchr(p, ',');
        char *end = comma ? comma : p + strlen(p);
        char *s = p, *e = end;
        while (s < e && is_blank(*s)) s++;
        while (e > s && is_blank(e[-1])) e--;
        *e = '\0';
        if (strpbrk(s, "xX")) { /* strtof reads hexadecimal too: "0x10" is 16 */
            nb__set_error(NB_ERR_CORRUPT, "data: %s:%ld: field %d '%.40s' is not a number", path,
                          lineno, j + 1, s);
            return -1;
        }
        char *stop = s;
        errno = 0;
        float v = strtof_l(s, &stop, c_locale);
        if (s == e || stop != e) {
            nb__set_error(NB_ERR_CORRUPT, "data: %s:%ld: field %d '%.40s' is not a number", path,
                          lineno, j + 1, s);
            return -1;
        }
        if (!isfinite(v)) {
            nb__set_error(NB_ERR_NONFINITE, "data: %s:%ld: field %d '%.40s' is not a finite float",
                          path, lineno, j + 1, s);
            return -1;
        }
        vals[j] = v;
        p = comma ? comma + 1 : end;
    }
    return 0;
}

nb_status nb_load_csv(const char *path, int label_col, bool skip_header, nb_dataset *out) {
    if (!out) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_load_csv: out is NULL");
        return NB_ERROR;
    }
    memset(out, 0, sizeof *out);
    if (!path) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_load_csv: path is NULL");
        return NB_ERROR;
    }
    int fd = nb__data_open(path, "a CSV file");
    if (fd < 0) return NB_ERROR;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        int e = errno;
        nb__set_error(nb__errno_kind(e), "data: %s: cannot open: %s", path, strerror(e));
        close(fd);
        return NB_ERROR;
    }
    // The C locale's numbers, without touching the process's locale (which
    // another thread may be using): a locale object of its own.
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c_locale) {
        int e = errno;
        nb__set_error(nb__errno_kind(e), "data: %s: cannot make the C locale: %s", path,
                      strerror(e));
        fclose(f);
        return NB_ERROR;
    }

    char *line = NULL;
    size_t line_cap = 0;
    float *x = NULL, *y = NULL, *row = NULL;
    size_t cap = 0;      // examples x and y have room for
    long n = 0;          // examples read
    long lineno = 0;
    long blank_at = 0;   // first blank line seen so far, 0 if none
    long first_line = 0; // the line that fixed the number of fields
    int k = 0, lc = 0, dim = 0;

    ssize_t len;
    for (;;) {
        errno = 0;
        len = getline(&line, &line_cap, f);
        if (len == -1) {
            // -1 is also what running out of memory in a long line gives
            // (errno ENOMEM, the stream's error flag unset): only the end
            // of the file ends the data.
            if (feof(f) && !ferror(f)) break;
            if (errno == ENOMEM) {
                lineno++;
                goto oom;
            }
            nb__set_error(NB_ERR_IO, "data: %s:%ld: read error: %s", path, lineno + 1,
                          errno ? strerror(errno) : "unknown");
            goto fail;
        }
        lineno++;
        char *s = line;
        if (lineno == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
            (unsigned char)s[2] == 0xBF)
            s += 3;  // a UTF-8 byte-order mark, as spreadsheet programs write
        if (lineno == 1 && skip_header) continue;
        if ((size_t)len != strlen(line)) {
            nb__set_error(NB_ERR_CORRUPT, "data: %s:%ld: line holds a NUL byte (not a text file?)",
                          path, lineno);
            goto fail;
        }
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == '\r')) s[--l] = '\0';
        size_t b = 0;
        while (b < l && is_blank(s[b])) b++;
        if (b == l) {
            if (!blank_at) blank_at = lineno;
            continue;
        }
        if (blank_at) {
            nb__set_error(NB_ERR_CORRUPT,
                          "data: %s:%ld: empty line before more data (only trailing empty lines are allowed)",
                          path, blank_at);
            goto fail;
        }

        int fields = count_fields(s);
        if (k == 0) {
            k = fields;
            first_line = lineno;
            if (k < 2) {
                nb__set_error(NB_ERR_CORRUPT,
                              "data: %s:%ld: 1 field; need at least one feature and a label", path,
                              lineno);
                goto fail;
            }
            lc = label_col < 0 ? k + label_col : label_col;
            if (label_col < -k || label_col >= k) {
                nb__set_error(NB_ERR_INVALID_ARGUMENT,
                              "data: %s: label column %d is outside the %d fields of line %ld",
                              path, label_col, k, lineno);
                goto fail;
            }
            dim = k - 1;
            row = malloc((size_t)k * sizeof *row);
            if (!row) goto oom;
        } else if (fields != k) {
            nb__set_error(NB_ERR_CORRUPT, "data: %s:%ld: %d fields, expected %d as on line %ld",
                          path, lineno, fields, k, first_line);
            goto fail;
        }
        if (parse_fields(s, k, row, c_locale, path, lineno) != 0) goto fail;

        if ((size_t)n == cap) {
            size_t next = cap ? 2 * cap : 256;
            if (next > (size_t)INT32_MAX) next = (size_t)INT32_MAX;
            if ((size_t)n == next || next > SIZE_MAX / sizeof(float) / (size_t)dim) {
                nb__set_error(NB_ERR_UNSUPPORTED, "data: %s:%ld: too many examples", path, lineno);
                goto fail;
            }
            float *nx = realloc(x, next * (size_t)dim * sizeof *x);
            if (!nx) goto oom;
            x = nx;
            float *ny = realloc(y, next * sizeof *y);
            if (!ny) goto oom;
            y = ny;
            cap = next;
        }
        float *xr = x + (size_t)n * (size_t)dim;
        for (int j = 0, c = 0; j < k; j++) {
            if (j == lc) y[n] = row[j];
            else xr[c++] = row[j];
        }
        n++;
    }
    if (n == 0) {
        nb__set_error(NB_ERR_CORRUPT, "data: %s: no data lines%s", path,
                      skip_header && lineno > 0 ? " after the header" : "");
        goto fail;
    }

    int classes = 1;  // max label + 1 while every label is a class index
    for (long i = 0; i < n && classes; i++) {
        float v = y[i];
        if (v < 0 || v >= CSV_MAX_CLASSES || v != floorf(v)) classes = 0;
        else if ((int)v + 1 > classes) classes = (int)v + 1;
    }

    free(line);
    free(row);
    freelocale(c_locale);
    fclose(f);
    out->x = x;
    out->y = y;
    out->n = (int)n;
    out->dim = dim;
    out->rows = 1;
    out->cols = dim;
    out->n_classes = classes;
    return NB_OK;

oom:
    nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: %s:%ld: out of memory", path, lineno);
fail:
    free(line);
    free(row);
    free(x);
    free(y);
    freelocale(c_locale);
    fclose(f);
    return NB_ERROR;
}
