/* graph/file.h — replacing a file atomically, for every writer in nabla
 * (models, histories, plots): write a temporary file beside the target,
 * flush and fsync it, rename it over the target, sync the folder. A crash
 * or an error at any point leaves the old file (or none) in place, never a
 * half-written one. Internal. */
#ifndef NABLA_GRAPH_FILE_H
#define NABLA_GRAPH_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct nb_atomic_file {
    FILE *f;      /* write here */
    char *tmp;    /* the temporary file's path, beside the target */
    char *path;   /* the target */
    bool unnamed; /* f is an O_TMPFILE file: tmp gets a name only at commit */
    bool named;   /* ... and has one now */
} nb_atomic_file;

/* Opens an unnamed file in path's folder (O_TMPFILE), or where the file
 * system cannot, creates "<path>.tmp.XXXXXX" (mode 0666 & ~umask, like any
 * new file), for writing. A process killed before the commit leaves no
 * file behind in the first case. false with a message in err on failure,
 * and errno saying why (ENOMEM when memory ran out): a caller reports it
 * with nb__set_error(nb__errno_kind(errno), ...). */
bool nb__atomic_open(nb_atomic_file *a, const char *path, char *err, size_t len);

/* If ok, flushes, syncs, closes and renames the temporary file over the
 * target and syncs the folder; otherwise, or if any of that fails, closes
 * and removes it. With ok false, errno is taken as the reason the caller's
 * writes failed. false with a message in err when the target was not
 * replaced (a write error seen by ferror counts as a failure), and errno
 * the reason, as for nb__atomic_open. */
bool nb__atomic_commit(nb_atomic_file *a, bool ok, char *err, size_t len);

#endif
