/* nabla/bench.h — the nabla-bench harness as a library: time your own op,
 * forward and backward, the way nabla times its own.
 *
 * Link with libnabla-bench (pkg-config nabla-bench). Describe each op with
 * an nbb_op and hand the table to nbb_main, which parses nabla-bench's
 * command line, runs the built-in ops and then yours over the same shapes
 * and thread counts, and prints one row per (op, pass, shape, threads):
 * the median time of the op's own kernel ("net": the whole nb_forward or
 * nb_backward less that of the same graph with the op replaced by a no-op)
 * and its speed against the fastest copy of the same data, measured in the
 * same rounds.
 *
 *   // y = x^3 as an nb_custom_op cube (nabla/custom.h)
 *   static nb_node *build_cube(nb_graph *g, nb_node *const *in, void *user) {
 *       return nb_custom(g, &cube, 1, in, user);
 *   }
 *   int main(int argc, char **argv) {
 *       static const nbb_op mine[] = {
 *           {"cube", "x", build_cube, NULL, {8, 0, 0}, {16, 0, 0}, false, true},
 *       };
 *       return nbb_main(argc, argv, mine, 1);
 *   }
 *
 *   cc my_bench.c $(pkg-config --cflags --libs nabla-bench) -o my-bench
 *   ./my-bench --op cube --shapes 256x1000 --threads 1,2
 *
 * The harness is for benchmark programs: it keeps its settings in globals
 * and writes to stdout and stderr. Call it from one thread. */
#ifndef NABLA_BENCH_H
#define NABLA_BENCH_H

#include <stdbool.h>

#include "nabla.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What one pass must read and write, in bytes, as
 *   elem·R·F + row·R + feature·F
 * for an [R,F] case: each array the kernel reads plus each it writes,
 * counted once (an elementwise forward reads x and writes y: {8, 0, 0}; its
 * backward reads x and dy and reads and writes dx: {16, 0, 0}). The rate
 * and the percentage of the copy limit come from it; it changes no time. */
typedef struct nbb_bytes {
    double elem, row, feature;
} nbb_bytes;

/* One op to benchmark.
 *   name    the row's label and what --op selects. Must differ from the
 *           built-in ops' names (nabla-bench --list) and from the other
 *           user ops'; nbb_main refuses a clash.
 *   inputs  one letter per input, in order (1 to NB_CUSTOM_MAX_INPUTS):
 *             x  [R,F] trainable parameter, normal(0,1) values
 *             c  [R,F] constant (no gradient), normal(0,1)
 *             f  [F] trainable parameter (a bias, gamma, beta), normal(0,1)
 *             l  [R] constant class labels, integers in [0,F)
 *   build   makes the op's node in g from the input nodes in[0..n) and
 *           returns it (NULL or an error on g: the case is reported as
 *           failed). It may build several nodes: the row then times them
 *           all, against a no-op with the same inputs and output shape.
 *           It is called once per (shape) case, with `user`.
 *   user    passed to build; borrowed, must outlive nbb_main.
 *   fwd, bwd  the bytes each pass moves (nbb_bytes).
 *   logits  also run on the output layer's shapes [32,10] and [256,10].
 *   extra   run only when --op names it (not in a run of every op). */
typedef struct nbb_op {
    const char *name;
    const char *inputs;
    nb_node *(*build)(nb_graph *g, nb_node *const *in, void *user);
    void *user;
    nbb_bytes fwd, bwd;
    bool logits;
    bool extra;
} nbb_op;

/* Runs nabla-bench: parses argv (argv[0] is skipped), times the built-in
 * ops and then user_ops[0..n_user_ops) that the flags select, and prints
 * the table on stdout (or JSON lines with --json / --json-out FILE).
 * Flags (--help prints them):
 *   --quick          fewer shapes, at most 20 samples and 0.05 s each
 *   --op NAMES       only these ops, comma-separated or repeated (--list)
 *   --shapes RxF,..  the [R,F] shapes of every op but matmul, in place of
 *                    the defaults (all selected ops run on all of them)
 *   --threads L      thread counts, comma-separated (default 1,2)
 *   --reps N, --budget S  at most N samples and S seconds per measurement
 *   --json, --json-out FILE, --no-openblas, --list, --help
 * user_ops (may be NULL when n_user_ops is 0) and everything it points to
 * are borrowed for the call. Each call starts from the default settings.
 * Returns 0; 2 for a bad argument, an unknown --op name or a user op whose
 * name clashes (with a message on stderr, nothing run); 1 when the JSON file
 * cannot be written or any case failed to build or run, out of memory
 * included (each failure is reported on stderr naming the op and shape; the
 * other cases still run). It never ends the process itself. */
int nbb_main(int argc, char **argv, const nbb_op *user_ops, int n_user_ops);

/* Hands a tensor the op's build made (batch norm's running statistics, a
 * constant of its own) to the harness, which frees it with nb_tensor_free
 * when the current case ends; the graph may use it until then. Call only
 * from build. Holds 16 tensors per case: past that it says so on stderr
 * and the tensor is not freed (a leak, not an error). */
void nbb_keep(nb_tensor *t);

/* One row of results, as printed. Times are medians in microseconds over
 * the samples of one measurement; net = raw - baseline and may be 0 or
 * negative for an op cheaper than the timer's noise. */
typedef struct nbb_result {
    const char *op;    /* the nbb_op's name, or "matmul" */
    const char *pass;  /* "fwd" or "bwd" */
    const char *shape; /* "[R,F]", or "[M,K]x[K,N]" for matmul */
    int threads;
    int runs; /* samples of the op's graph */
    double net_us, raw_us, baseline_us, raw_min_us, raw_max_us;
    double others_cpu_share; /* share of the CPUs other processes took meanwhile (0..1) */
} nbb_result;

/* Has nbb_main call fn(result, user) for every row it prints, after
 * printing it, so a program can compare rows itself (a ratio of two ops).
 * The strings in result live until fn returns. fn NULL stops the calls.
 * user is borrowed. The setting holds for later nbb_main calls. */
void nbb_on_result(void (*fn)(const nbb_result *result, void *user), void *user);

#ifdef __cplusplus
}
#endif
#endif
