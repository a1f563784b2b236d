/* graph/file.c's atomic replacement: a writer killed before its commit
 * leaves the previous file byte for byte and no temporary file (issue 10,
 * hole 14: every killed save used to leave a *.tmp.XXXXXX of the model's
 * size behind for good). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph/file.h"

static int entries(const char *dir) {
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

Test(file, a_writer_killed_before_its_commit_leaves_the_old_file_and_nothing_else) {
    char dir[] = "/tmp/nabla-file-XXXXXX", path[96], err[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    nb_atomic_file a;
    cr_assert(nb__atomic_open(&a, path, err, sizeof err), "%s", err);
    fputs("the old file", a.f);
    cr_assert(nb__atomic_commit(&a, true, err, sizeof err), "%s", err);
    for (int round = 0; round < 5; round++) {
        int ready[2];
        cr_assert_eq(pipe(ready), 0);
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) { /* write 8 MB, say so, and wait to be killed */
            nb_atomic_file b;
            if (!nb__atomic_open(&b, path, err, sizeof err)) _exit(3);
            static char block[1 << 16];
            memset(block, 'x', sizeof block);
            for (int i = 0; i < 128; i++) fwrite(block, 1, sizeof block, b.f);
            fflush(b.f);
            (void)!write(ready[1], "k", 1);
            for (;;) pause();
        }
        char c;
        close(ready[1]);
        cr_assert_eq(read(ready[0], &c, 1), 1, "the writer did not get going");
        close(ready[0]);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status));
        cr_assert_eq(entries(dir), 1, "round %d: a killed writer left a temporary file behind", round);
    }
    FILE *f = fopen(path, "rb");
    char buf[64] = {0};
    cr_assert_not_null(f);
    cr_assert_eq(fread(buf, 1, sizeof buf - 1, f), strlen("the old file"));
    fclose(f);
    cr_assert_str_eq(buf, "the old file");
    unlink(path), rmdir(dir);
}

Test(file, a_failed_write_is_discarded_and_a_good_one_replaces_the_target) {
    char dir[] = "/tmp/nabla-file-XXXXXX", path[96], err[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/h.csv", dir);
    nb_atomic_file a;
    cr_assert(nb__atomic_open(&a, path, err, sizeof err), "%s", err);
    fputs("first", a.f);
    cr_assert(nb__atomic_commit(&a, true, err, sizeof err), "%s", err);
    cr_assert(nb__atomic_open(&a, path, err, sizeof err), "%s", err);
    fputs("broken", a.f);
    cr_assert(!nb__atomic_commit(&a, false, err, sizeof err));
    cr_assert(strstr(err, "previous file is untouched"), "%s", err);
    cr_assert(nb__atomic_open(&a, path, err, sizeof err), "%s", err);
    fputs("second", a.f);
    cr_assert(nb__atomic_commit(&a, true, err, sizeof err), "%s", err);
    cr_assert_eq(entries(dir), 1);
    FILE *f = fopen(path, "rb");
    char buf[16] = {0};
    cr_assert_eq(fread(buf, 1, sizeof buf - 1, f), 6);
    fclose(f);
    cr_assert_str_eq(buf, "second");
    unlink(path), rmdir(dir);
}
