/* graph/file.c — atomic file replacement (see graph/file.h). */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "graph/file.h"

/* "<path>.tmp.XXXXXX" with a fresh suffix: random enough that two writers
 * rarely collide, and O_EXCL settles it when they do. */
static void temp_name(char *buf, size_t len, const char *path) {
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static unsigned long counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 40 ^
                 (uint64_t)__atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED) * 0x9E3779B97F4A7C15ull;
    /* splitmix64's finalizer spreads every input bit over the suffix */
    x = (x ^ x >> 30) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ x >> 27) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    int n = snprintf(buf, len, "%s.tmp.", path);
    for (int i = 0; i < 6; i++, x /= 62) buf[n + i] = alnum[x % 62];
    buf[n + 6] = '\0';
}

/* The folder of path, in a new string (NULL if memory runs out). */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    char *dir = malloc(n + 1);
    if (!dir) return NULL;
    if (!slash) memcpy(dir, ".", 2);
    else if (n == 0) memcpy(dir, "/", 2);
    else {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    return dir;
}

/* Makes the rename itself durable. Best effort: the new file is already in
 * place, and some file systems cannot sync a folder. */
static void sync_dir(const char *path) {
    char *dir = folder_of(path);
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

bool nb__atomic_open(nb_atomic_file *a, const char *path, char *err, size_t len) {
    memset(a, 0, sizeof *a);
    size_t tmp_len = strlen(path) + 16;
    a->tmp = malloc(tmp_len);
    a->path = strdup(path);
    if (!a->tmp || !a->path) {
        snprintf(err, len, "out of memory");
        free(a->tmp), free(a->path);
        errno = ENOMEM;
        return false;
    }
    /* An unnamed file in the target's folder (O_TMPFILE) gets a name only
     * when it is complete: a process killed while writing leaves nothing
     * behind. Where the file system cannot (EOPNOTSUPP, EISDIR on old
     * kernels), a named temporary file, removed on any error we see. */
    int fd = -1;
    char *dir = folder_of(path);
    if (dir) fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    free(dir);
    a->unnamed = fd >= 0;
    /* open(O_EXCL) rather than mkstemp: mkstemp makes the file 0600, and a
     * saved file should get the usual 0666 & ~umask like any other */
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        temp_name(a->tmp, tmp_len, path);
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd >= 0 && !(a->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        if (!a->unnamed) unlink(a->tmp);
        errno = e;
    }
    if (!a->f) {
        int e = errno;
        snprintf(err, len, "cannot create a temporary file beside it: %s", strerror(e));
        free(a->tmp), free(a->path);
        memset(a, 0, sizeof *a);
        errno = e;
        return false;
    }
    return true;
}

/* Links the complete unnamed file under a fresh temporary name beside the
 * target, for the rename (linkat cannot replace a file). */
static bool name_unnamed(nb_atomic_file *a) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(a->f));
    size_t tmp_len = strlen(a->path) + 16;
    for (int tries = 0; tries < 100; tries++) {
        temp_name(a->tmp, tmp_len, a->path);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, a->tmp, AT_SYMLINK_FOLLOW) == 0) {
            a->named = true;
            return true;
        }
        if (errno != EEXIST) return false;
    }
    return false;
}

bool nb__atomic_commit(nb_atomic_file *a, bool ok, char *err, size_t len) {
    const char *step = "writing";
    int e = 0, writer_errno = errno; /* why the caller's writes failed, if they did */
    if (!ok) {
        e = writer_errno ? writer_errno : EIO; /* a short write may leave errno unset */
    } else {
        errno = 0;
        if (ferror(a->f) || fflush(a->f) != 0) e = errno ? errno : EIO;
        else if (fsync(fileno(a->f)) != 0) e = errno, step = "syncing";
    }
    if (!e && a->unnamed && !name_unnamed(a)) e = errno, step = "naming";
    if (fclose(a->f) != 0 && !e) e = errno, step = "closing";
    if (!e && rename(a->tmp, a->path) != 0) e = errno, step = "renaming";
    if (e) {
        if (!a->unnamed || a->named) unlink(a->tmp);
        snprintf(err, len, "%s the temporary file failed: %s; any previous file is untouched", step, strerror(e));
    } else {
        sync_dir(a->path);
    }
    free(a->tmp), free(a->path);
    memset(a, 0, sizeof *a);
    if (e) errno = e;
    return !e;
}
