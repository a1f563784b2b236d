/* fuzz/memfile.h — a file in memory for harnesses of path-taking APIs.
 *
 * The loaders take a path, so each input is written to a memfd and the
 * loader is given /proc/self/fd/N: a regular file (the loaders refuse
 * anything else) that never touches the disk. One memfd per role is made
 * on first use and rewritten for every input. */
#ifndef NABLA_FUZZ_MEMFILE_H
#define NABLA_FUZZ_MEMFILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct fuzz_file {
    int fd; /* 0 before the first use */
    char path[40];
} fuzz_file;

/* Replaces f's content with data[0..len) and returns its path. Aborts the
 * harness (not the library) when the memfd cannot be made or written. */
const char *fuzz_file_set(fuzz_file *f, const uint8_t *data, size_t len);

/* Common set-up for every harness: one thread, no adaptive threading, so
 * runs are reproducible and the two shared cores are not oversubscribed. */
void fuzz_setup_env(void);

/* With NABLA_FUZZ_VERBOSE set in the environment, prints what the loader
 * said of an input (ok, or nb_last_error()) to stderr: for reading what a
 * seed or a finding reaches. */
void fuzz_report(const char *what, int ok);

#endif
