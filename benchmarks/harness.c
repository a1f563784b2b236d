/* libnabla-bench — the harness behind nabla-bench (nabla/bench.h): every op
 * of nabla, and a user's own, forward and backward, through the public API,
 * next to the machine's limits measured in the same run.
 *
 * For each (op, shape, thread count) it prints the median time of the op's
 * forward and backward pass and the rate: GFLOP/s for matmul (2·M·N·K per
 * product, two products backward), GB/s moved for every other op (the bytes
 * of each array the kernel reads plus each array it writes, counted once;
 * see README.md). Next to the rate, the limit measured in the same rounds:
 *   - matmul: a bare BLIS bli_sgemm_ex of the same shapes and thread count,
 *     and OpenBLAS's cblas_sgemm, loaded at run time with dlopen (never
 *     linked: BLIS and OpenBLAS export the same symbols);
 *   - other ops: the fastest copy (read n floats, write n floats) of the
 *     op's largest tensor: a loop or memcpy, serial or split over the
 *     same threads.
 *
 * How an op is timed: a graph per (op, shape) whose inputs are trainable
 * parameters, y = op(inputs), and a loss: y itself when it is a scalar,
 * else a custom "seed" op whose forward writes 0 and whose backward adds 1
 * to every element of dy (nb_sum's backward, without nb_sum's serial forward
 * sum). A baseline graph is the same with the op replaced by a custom "null"
 * op of the same inputs and output shape that does nothing. nb_backward
 * zeroes every gradient buffer before it runs the ops (memsets nabla cannot
 * skip), so the table shows raw (the whole nb_forward / nb_backward call) and
 * net = raw - baseline (the op's own kernel), and rates use net.
 *
 *   nabla-bench [--quick] [--json | --json-out FILE] [--op NAME[,NAME]] [--threads 1,2]
 *               [--shapes RxF[,RxF]] [--reps N] [--budget SECONDS] [--no-openblas] [--list]
 *
 * A user's op (an nb_custom_op, nb_elementwise, a few nodes) goes through
 * the same harness: link libnabla-bench and call nbb_main with a table of
 * nbb_op (README.md shows how). */
#define _GNU_SOURCE /* RTLD_DEEPBIND */
#include <blis.h>
#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "nabla/bench.h"

/* ---- options and output ---- */

#define MAX_SHAPES 16

typedef struct {
    int reps, min_reps;
    double budget; /* seconds of timed runs per measurement, at most */
    bool quick, json, openblas;
    int threads[8], n_threads;
    int shapes[MAX_SHAPES][2], n_shapes; /* --shapes: [R,F] of the ops but matmul */
    char filter[1024];
} options;

static const options default_opt = {
    .reps = 200, .min_reps = 5, .budget = 0.1, .openblas = true, .threads = {1, 2}, .n_threads = 2};
static options opt; /* nbb_main sets it from default_opt and the flags */

/* Cases that failed to build or run: nbb_main then returns 1. */
static int n_failed;

/* nbb_on_result's callback */
static void (*result_fn)(const nbb_result *, void *);
static void *result_user;

void nbb_on_result(void (*fn)(const nbb_result *result, void *user), void *user) {
    result_fn = fn;
    result_user = user;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double med, min, max; /* seconds */
    int runs;
} nbb_stats;

/* Something to time: fn(arg). */
typedef struct {
    void (*fn)(void *);
    void *arg;
} nbb_job;

#define ROUNDS 5

/* Times the jobs in ROUNDS interleaved rounds (job 0, 1, ..., 0, 1, ...),
 * so that a machine whose speed drifts (a shared VM) slows them all alike,
 * and gives each job's median sample. Each job's first round warms it up
 * (3 calls and 2 ms at least, 1000 calls at most: caches, the CPU's clock,
 * OpenMP's threads); later rounds re-warm its caches for 0.5 ms unless a
 * call takes more than 1 ms. A sample times enough back-to-back calls to
 * last 20 us (a VM's clock ticks in tens of ns) and counts their mean. Each
 * job gets up to opt.reps samples and opt.budget seconds of them, and at
 * least opt.min_reps samples. */
static void measure_set(const nbb_job *jobs, int n, nbb_stats *out) {
    enum { MAX_JOBS = 8 };
    static double t[MAX_JOBS][4096];
    int cap = opt.reps < 4096 ? opt.reps : 4096, cnt[MAX_JOBS] = {0}, inner[MAX_JOBS];
    double per_call[MAX_JOBS];
    if (n > MAX_JOBS) n = MAX_JOBS;
    for (int r = 0; r < ROUNDS; r++)
        for (int j = 0; j < n; j++) {
            double start = now();
            if (r == 0) {
                int w = 0;
                for (; w < 1000 && (w < 3 || now() - start < 2e-3); w++) jobs[j].fn(jobs[j].arg);
                per_call[j] = (now() - start) / w;
                inner[j] = per_call[j] > 0 ? (int)ceil(20e-6 / per_call[j]) : 1;
                inner[j] = inner[j] < 1 ? 1 : inner[j] > 1000 ? 1000 : inner[j];
            } else if (per_call[j] < 1e-3) {
                for (int w = 0; w < 1000 && (w < 1 || now() - start < 5e-4); w++) jobs[j].fn(jobs[j].arg);
            }
            /* this round's share of the samples and of the budget */
            int goal = (int)((long)cap * (r + 1) / ROUNDS);
            int least = (opt.min_reps * (r + 1) + ROUNDS - 1) / ROUNDS;
            double t_start = now(), share = opt.budget / ROUNDS;
            while (cnt[j] < goal || cnt[j] < least) {
                double t0 = now();
                for (int i = 0; i < inner[j]; i++) jobs[j].fn(jobs[j].arg);
                double t1 = now();
                t[j][cnt[j]++] = (t1 - t0) / inner[j];
                if (cnt[j] >= least && t1 - t_start > share) break;
            }
        }
    for (int j = 0; j < n; j++) {
        double *v = t[j];
        int m = cnt[j];
        qsort(v, (size_t)m, sizeof *v, cmp_double);
        out[j] = (nbb_stats){m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]), v[0], v[m - 1], m};
    }
}

/* NULL (after a message) when out of memory: the case then fails. */
static float *falloc(size_t n) {
    float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) / 64 * 64);
    if (!p) fprintf(stderr, "nabla-bench: out of memory for %zu floats\n", n);
    return p;
}

static void fill_normal(float *p, size_t n, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed, 0);
    for (size_t i = 0; i < n; i++) p[i] = nb_rng_normal(&r);
}

/* ---- other processes: this machine is shared ---- */

/* CPU seconds every process of the machine spent busy (from /proc/stat,
 * steal included), this process's own CPU seconds, and the time. */
typedef struct {
    double busy, own, wall;
} cpu_mark;

static cpu_mark cpu_now(void) {
    cpu_mark m = {0, 0, now()};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        unsigned long long v[10] = {0};
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8) /* user nice system idle iowait irq softirq steal */
            m.busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
        fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    m.own = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
            (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    return m;
}

/* The share of the machine's CPUs that other processes (or the hypervisor)
 * took between a and b: 0 on a quiet machine. /proc/stat counts in ticks
 * (10 ms), so less than 3 ticks of others' time reads as none. */
static double others_share(cpu_mark a, cpu_mark b) {
    double wall = b.wall - a.wall, cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
    if (!(wall > 0.05) || !(a.busy > 0)) return 0.0; /* too short to tell */
    double other = (b.busy - a.busy) - (b.own - a.own);
    return other > 3.0 / (double)sysconf(_SC_CLK_TCK) ? other / (wall * cores) : 0.0;
}

/* Rows timed while others took more than this share get a '*'. */
#define BUSY_SHARE 0.10
static int n_busy_rows;

/* ---- the limits: copy loop, BLIS, OpenBLAS ---- */

/* Two ways to read n floats and write n floats:
 *   - a loop like an op's kernel, compiled with the same flags as nabla
 *     ("+ 0.0f" keeps the compiler from turning it into a memcpy call: it is
 *     not the identity on -0.0). Without -Dnative=true that is SSE2 code,
 *     whose stores cap it at about half the cache's speed on AVX-512 CPUs;
 *   - glibc's memcpy, which picks AVX2/AVX-512 code at run time and
 *     non-temporal stores for large buffers.
 * The limit is the faster of the two, so a kernel that only matches the
 * loop shows how much wider vectors would give. */
enum { COPY_LOOP, COPY_MEMCPY };

static void copy_run(int kind, float *restrict y, const float *restrict x, size_t n) {
    if (kind == COPY_MEMCPY) memcpy(y, x, n * sizeof(float));
    else
        for (size_t i = 0; i < n; i++) y[i] = x[i] + 0.0f;
}

/* The same split statically over `threads` threads (in chunks of 16 floats). */
static void copy_split(int kind, float *y, const float *x, size_t n, int threads) {
    if (threads < 2) {
        copy_run(kind, y, x, n);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        size_t chunk = (n / nt + 15) / 16 * 16, i0 = t * chunk < n ? t * chunk : n;
        size_t i1 = i0 + chunk < n ? i0 + chunk : n;
        copy_run(kind, y + i0, x + i0, i1 - i0);
    }
}

typedef struct {
    float *y, *x;
    size_t n;
    int threads, kind;
} copy_arg;

/* Sets up a copy of n floats in one allocation (*buf, to free), with x's
 * address 256 bytes above y's modulo 4 KiB. Were they equal modulo 4 KiB
 * (two large allocations of the same size are), loads would be held up by
 * the earlier stores to the same offset ("4K aliasing") and the loop would
 * run at half speed: a poor limit. */
static copy_arg copy_setup(size_t n, int threads, float **buf) {
    size_t span = (n + 1023) / 1024 * 1024;
    *buf = falloc(2 * span + 64);
    if (!*buf) return (copy_arg){0};
    copy_arg a = {*buf, *buf + span + 64, n, threads, COPY_LOOP};
    fill_normal(a.x, n, 7);
    memset(a.y, 0, n * sizeof(float));
    return a;
}

static void copy_fn(void *p) {
    copy_arg *a = p;
    copy_split(a->kind, a->y, a->x, a->n, a->threads);
}

/* Keeps `threads` threads copying for `seconds`: on this VM the first
 * threaded work after a quiet spell runs slowly for a while (an idle vCPU
 * is woken and its clock raised), which would fall on the first rows. */
static void spin_up(int threads, double seconds) {
    float *buf;
    copy_arg a = copy_setup((size_t)1 << 18, threads, &buf);
    if (!buf) return;
    for (double t0 = now(); now() - t0 < seconds;) copy_fn(&a);
    free(buf);
}

/* For the header: GB/s of the copy loop and of glibc's memcpy (which may use
 * non-temporal stores on large buffers) over n floats, serially. */
static void copy_vs_memcpy(size_t n, double *loop_gbs, double *memcpy_gbs) {
    float *buf;
    copy_arg a = copy_setup(n, 1, &buf), m = a;
    if (!buf) {
        *loop_gbs = *memcpy_gbs = NAN;
        return;
    }
    m.kind = COPY_MEMCPY;
    nbb_stats st[2];
    measure_set((nbb_job[]){{copy_fn, &a}, {copy_fn, &m}}, 2, st);
    *loop_gbs = 8.0 * (double)n / st[0].med * 1e-9;
    *memcpy_gbs = 8.0 * (double)n / st[1].med * 1e-9;
    free(buf);
}

typedef struct {
    void *handle;
    void (*sgemm)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                  int lda, const float *b, int ldb, float beta, float *c, int ldc);
    void (*set_threads)(int);
    char *(*config)(void);
    char *(*corename)(void);
    char note[256];
    char unset[128];
} openblas_t;

static openblas_t ob;

/* CBLAS's enum values (the ABI passes them as ints). */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

/* OpenBLAS reads its environment when it loads: this environment's
 * OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE force slower kernels, so they are
 * unset first and OpenBLAS picks its own kernels, as it would by default.
 * RTLD_DEEPBIND makes OpenBLAS's calls to itself resolve inside it, not to
 * BLIS's same-named symbols already loaded; RTLD_LOCAL keeps its symbols
 * out of everyone else's way. */
static void openblas_load(void) {
    if (ob.handle) return; /* loaded by an earlier nbb_main */
    if (!opt.openblas) {
        snprintf(ob.note, sizeof ob.note, "skipped (--no-openblas)");
        return;
    }
    const char *vars[] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"};
    for (int i = 0; i < 2; i++)
        if (getenv(vars[i])) {
            size_t len = strlen(ob.unset);
            snprintf(ob.unset + len, sizeof ob.unset - len, "%s%s=%s", len ? " " : "", vars[i],
                     getenv(vars[i]));
            unsetenv(vars[i]);
        }
    ob.handle = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!ob.handle) {
        snprintf(ob.note, sizeof ob.note,
                 "not found (%s); install libopenblas0-pthread (scripts/setup-bench.sh)", dlerror());
        return;
    }
    *(void **)&ob.sgemm = dlsym(ob.handle, "cblas_sgemm");
    *(void **)&ob.set_threads = dlsym(ob.handle, "openblas_set_num_threads");
    *(void **)&ob.config = dlsym(ob.handle, "openblas_get_config");
    *(void **)&ob.corename = dlsym(ob.handle, "openblas_get_corename");
    if (!ob.sgemm || !ob.set_threads) {
        snprintf(ob.note, sizeof ob.note, "libopenblas.so.0 lacks cblas_sgemm or openblas_set_num_threads");
        dlclose(ob.handle);
        ob.handle = NULL;
        ob.sgemm = NULL;
        return;
    }
    snprintf(ob.note, sizeof ob.note, "%s, core %s", ob.config ? ob.config() : "?",
             ob.corename ? ob.corename() : "?");
}

static void blis_gemm(int threads, bool ta, bool tb, int m, int n, int k, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc) {
    float one = 1.0f;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(threads, &rntm);
    bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, m, n,
                 k, &one, (float *)a, lda, 1, (float *)b, ldb, 1, &beta, c, ldc, 1, NULL, &rntm);
}

/* ---- the harness's own custom ops ---- */

/* seed: y = 0 (a scalar); dx += dy[0] everywhere, as nb_sum's backward. */
static int seed_shape(int n, const nb_shape *in, nb_shape *out, void *u, char *err, size_t len) {
    (void)n, (void)in, (void)u, (void)err, (void)len;
    *out = (nb_shape){0};
    return 0;
}
static void seed_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys,
                     void *u) {
    (void)n, (void)in, (void)s, (void)ys, (void)u;
    y[0] = 0.0f;
}
static void seed_bwd(int n, const float *const *in, const nb_shape *s, const float *y,
                     const float *dy, const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)in, (void)y, (void)ys, (void)u;
    if (!din[0]) return;
    size_t size = nb_shape_size(&s[0]);
    float d = dy[0], *dx = din[0];
    for (size_t i = 0; i < size; i++) dx[i] += d;
}
static const nb_custom_op seed_op = {"bench_seed", seed_shape, seed_fwd, seed_bwd};

/* null: the op's inputs and output shape (*user), no work either way. */
static int null_shape(int n, const nb_shape *in, nb_shape *out, void *u, char *err, size_t len) {
    (void)n, (void)in, (void)err, (void)len;
    *out = *(const nb_shape *)u;
    return 0;
}
static void null_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys,
                     void *u) {
    (void)n, (void)in, (void)s, (void)y, (void)ys, (void)u;
}
static void null_bwd(int n, const float *const *in, const nb_shape *s, const float *y,
                     const float *dy, const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)in, (void)s, (void)y, (void)dy, (void)ys, (void)din, (void)u;
}
static const nb_custom_op null_op = {"bench_null", null_shape, null_fwd, null_bwd};

/* ---- one case: an op's graph and its baseline ---- */

static nb_tensor *kept[16];
static int n_kept;

void nbb_keep(nb_tensor *t) {
    if (n_kept < 16) kept[n_kept++] = t;
    else fprintf(stderr, "nabla-bench: nbb_keep holds 16 tensors at most\n");
}

static void free_kept(void) {
    while (n_kept) nb_tensor_free(kept[--n_kept]);
}

typedef struct {
    nb_graph *g, *gb; /* the op's graph and its baseline */
    nb_node *loss, *lossb;
    nb_shape yshape;
    float *feed; /* the batch input's rows (zeros, never read) */
} graphs;

static void fwd_fn(void *p) { nb_forward(p, NB_TRAINING); }

typedef struct {
    nb_graph *g;
    nb_node *loss;
} bwd_arg;

static void bwd_fn(void *p) {
    bwd_arg *a = p;
    nb_backward(a->g, a->loss);
}

/* Adds the loss on y: y itself when it is a scalar, else seed(y). */
static nb_node *loss_of(nb_graph *g, nb_node *y) {
    if (!y) return NULL;
    return nb_node_size(y) == 1 ? y : nb_custom(g, &seed_op, 1, &y, NULL);
}

/* Builds both graphs over the same tensors; build(g, nodes) makes the op.
 * Returns false (after a message) when either graph failed.
 *
 * Each graph also gets an input of `batch` rows that no op reads, fed once:
 * nabla decides at a pass's first batch whether the pass runs in one
 * parallel region (the team of graph/run.c, which a model's small steps
 * use), and a graph of parameters alone has no batch, so without it every
 * pass would run as a model's never does. */
static bool make_graphs(graphs *gr, nb_tensor **t, const bool *is_const, int n_in, int batch,
                        nb_node *(*build)(nb_graph *, nb_node *const *, void *), void *user,
                        const char *label) {
    nb_node *in[NB_CUSTOM_MAX_INPUTS], *inb[NB_CUSTOM_MAX_INPUTS];
    gr->g = nb_graph_new(), gr->gb = nb_graph_new();
    gr->feed = calloc((size_t)batch, sizeof(float));
    if (!gr->g || !gr->gb || !gr->feed) {
        fprintf(stderr, "nabla-bench: %s: out of memory\n", label);
        return false;
    }
    nb_graph *both[2] = {gr->g, gr->gb};
    for (int i = 0; i < 2; i++) nb_feed(both[i], nb_input(both[i], "bench_batch", 1, &batch), gr->feed, batch);
    nb_graph_set_seed(gr->g, 42);
    for (int i = 0; i < n_in; i++) {
        in[i] = is_const[i] ? nb_constant(gr->g, t[i]) : nb_param(gr->g, t[i]);
        inb[i] = is_const[i] ? nb_constant(gr->gb, t[i]) : nb_param(gr->gb, t[i]);
    }
    nb_node *y = nb_graph_status(gr->g) == NB_OK ? build(gr->g, in, user) : NULL;
    gr->loss = loss_of(gr->g, y);
    if (nb_graph_status(gr->g) != NB_OK || !gr->loss) {
        fprintf(stderr, "nabla-bench: %s: %s\n", label, nb_graph_error(gr->g));
        return false;
    }
    gr->yshape = nb_node_shape(y);
    nb_node *yb = nb_custom(gr->gb, &null_op, n_in, inb, &gr->yshape);
    gr->lossb = loss_of(gr->gb, yb);
    /* one run each: plans the arenas (and checks the runtime errors) */
    nb_forward(gr->g, NB_TRAINING), nb_backward(gr->g, gr->loss);
    nb_forward(gr->gb, NB_TRAINING), nb_backward(gr->gb, gr->lossb);
    const nb_graph *bad = nb_graph_status(gr->g) != NB_OK ? gr->g : nb_graph_status(gr->gb) != NB_OK ? gr->gb : NULL;
    if (bad) {
        fprintf(stderr, "nabla-bench: %s: %s\n", label, nb_graph_error(bad));
        return false;
    }
    return true;
}

static void free_graphs(graphs *gr) {
    nb_graph_free(gr->g), nb_graph_free(gr->gb);
    free(gr->feed);
    gr->g = gr->gb = NULL;
    gr->feed = NULL;
}

/* The four jobs of a case, in this order: the op's graph forward, its
 * baseline forward, the op's graph backward, its baseline backward. */
typedef struct {
    bwd_arg a, ab;
} graph_jobs;

static void graph_jobs_of(const graphs *gr, graph_jobs *gj, nbb_job *jobs) {
    gj->a = (bwd_arg){gr->g, gr->loss};
    gj->ab = (bwd_arg){gr->gb, gr->lossb};
    jobs[0] = (nbb_job){fwd_fn, gr->g};
    jobs[1] = (nbb_job){fwd_fn, gr->gb};
    jobs[2] = (nbb_job){bwd_fn, &gj->a};
    jobs[3] = (nbb_job){bwd_fn, &gj->ab};
}

/* ---- printing ---- */

typedef struct {
    const char *op, *pass, *shape;
    int threads;
    nbb_stats raw, base;
    bool flops;   /* rate in GFLOP/s (matmul), else GB/s */
    double work;  /* flops or bytes */
    /* limits: name, seconds for the same work (0: absent) */
    const char *lim1, *lim2;
    double lim1_s, lim2_s;
    /* copy limit only: its size in floats, threads and own time */
    size_t copy_n;
    int copy_threads, copy_kind;
    double copy_s;
    double others; /* share of the CPUs other processes took meanwhile */
} row;

static bool header_done;

static void print_header(void) {
    if (opt.json || header_done) return;
    header_done = true;
    printf("%-14s %-4s %-19s %3s %9s %9s %14s  %-26s %-26s\n", "op", "pass", "shape", "thr", "net us",
           "raw us", "rate", "limit 1 (rate, % of it)", "limit 2");
}

static double rate_of(double work, double s, bool flops) {
    (void)flops;
    return s > 0 ? work / s * 1e-9 : NAN;
}

static void fmt_limit(char *buf, size_t len, const char *name, double work, double s, double net,
                      bool flops) {
    if (!name) {
        buf[0] = 0;
        return;
    }
    if (!(s > 0)) {
        snprintf(buf, len, "%s n/a", name);
        return;
    }
    double lim = rate_of(work, s, flops);
    if (net > 0)
        snprintf(buf, len, "%s %7.2f %s %4.0f%%", name, lim, flops ? "GF/s" : "GB/s", 100.0 * s / net);
    else
        snprintf(buf, len, "%s %7.2f %s    -", name, lim, flops ? "GF/s" : "GB/s");
}

/* Where JSON lines go: stdout with --json, a file with --json-out, or nowhere. */
static FILE *jf;

static void json_num(const char *key, double v) {
    if (isfinite(v)) fprintf(jf, ",\"%s\":%.6g", key, v);
    else fprintf(jf, ",\"%s\":null", key);
}

static void json_str(const char *key, const char *s) {
    fprintf(jf, ",\"%s\":\"", key);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(jf, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(jf, "\\u%04x", *s);
        else fputc(*s, jf);
    }
    fputc('"', jf);
}

static void print_row(const row *r) {
    if (r->others > BUSY_SHARE) n_busy_rows++;
    double net = r->raw.med - r->base.med;
    double rate = net > 0 ? rate_of(r->work, net, r->flops) : NAN;
    if (jf) {
        fprintf(jf, "{\"type\":\"op\"");
        json_str("op", r->op);
        json_str("pass", r->pass);
        json_str("shape", r->shape);
        fprintf(jf, ",\"threads\":%d,\"runs\":%d", r->threads, r->raw.runs);
        json_num("net_us", net * 1e6);
        json_num("raw_us", r->raw.med * 1e6);
        json_num("raw_min_us", r->raw.min * 1e6);
        json_num("raw_max_us", r->raw.max * 1e6);
        json_num("baseline_us", r->base.med * 1e6);
        json_num(r->flops ? "flops" : "bytes", r->work);
        json_str("unit", r->flops ? "GFLOP/s" : "GB/s");
        json_num("rate", rate);
        const char *names[2] = {r->lim1, r->lim2};
        double secs[2] = {r->lim1_s, r->lim2_s};
        for (int i = 0; i < 2; i++) {
            if (!names[i]) continue;
            char key[64];
            if (r->flops) { /* a copy's own time is copy_us, below */
                snprintf(key, sizeof key, "%s_us", names[i]);
                json_num(key, secs[i] > 0 ? secs[i] * 1e6 : NAN);
            }
            snprintf(key, sizeof key, "%s_rate", names[i]);
            json_num(key, secs[i] > 0 ? rate_of(r->work, secs[i], r->flops) : NAN);
            snprintf(key, sizeof key, "pct_of_%s", names[i]);
            json_num(key, secs[i] > 0 && net > 0 ? 100.0 * secs[i] / net : NAN);
        }
        json_num("others_cpu_share", r->others);
        if (r->copy_n) {
            fprintf(jf, ",\"copy_floats\":%zu,\"copy_threads\":%d", r->copy_n, r->copy_threads);
            json_str("copy_kind", r->copy_kind == COPY_MEMCPY ? "memcpy" : "loop");
            json_num("copy_us", r->copy_s * 1e6);
        }
        fprintf(jf, "}\n");
        fflush(jf);
    }
    if (!opt.json) {
        print_header();
        char l1[64], l2[64], netb[32], rateb[32];
        fmt_limit(l1, sizeof l1, r->lim1, r->work, r->lim1_s, net, r->flops);
        fmt_limit(l2, sizeof l2, r->lim2, r->work, r->lim2_s, net, r->flops);
        if (net > 0) snprintf(netb, sizeof netb, "%9.2f", net * 1e6);
        else snprintf(netb, sizeof netb, "%9s", "~0");
        if (isfinite(rate)) snprintf(rateb, sizeof rateb, "%8.2f %s", rate, r->flops ? "GF/s" : "GB/s");
        else snprintf(rateb, sizeof rateb, "%13s", "-");
        printf("%-14s %-4s %-19s %3d %9s %9.2f %14s  %-26s %-26s%s\n", r->op, r->pass, r->shape,
               r->threads, netb, r->raw.med * 1e6, rateb, l1, l2, r->others > BUSY_SHARE ? " *" : "");
    }
    fflush(stdout);
    if (result_fn) {
        nbb_result res = {r->op, r->pass, r->shape, r->threads, r->raw.runs, net * 1e6, r->raw.med * 1e6,
                          r->base.med * 1e6, r->raw.min * 1e6, r->raw.max * 1e6, r->others};
        result_fn(&res, result_user);
    }
}

/* ---- matmul ---- */

static nb_node *build_matmul(nb_graph *g, nb_node *const *in, void *u) {
    (void)u;
    return nb_matmul(g, in[0], in[1]);
}

typedef struct {
    int threads, m, n, k;
    bool bwd;
    const float *x, *w, *dy;
    float *c, *dx, *dw;
} gemm_arg;

/* forward: C = X·W; backward: dX = dY·W^T, dW = X^T·dY (beta 0: in the
 * benchmark's graph the product is the first and only writer of both
 * gradients, which nabla's backward then overwrites rather than adds to).
 * X [M,K], W [K,N], dY [M,N]. */
static void blis_fn(void *p) {
    gemm_arg *a = p;
    if (!a->bwd) {
        blis_gemm(a->threads, false, false, a->m, a->n, a->k, a->x, a->k, a->w, a->n, 0.0f, a->c, a->n);
        return;
    }
    blis_gemm(a->threads, false, true, a->m, a->k, a->n, a->dy, a->n, a->w, a->n, 0.0f, a->dx, a->k);
    blis_gemm(a->threads, true, false, a->k, a->n, a->m, a->x, a->k, a->dy, a->n, 0.0f, a->dw, a->n);
}

static void openblas_fn(void *p) {
    gemm_arg *a = p;
    if (!a->bwd) {
        ob.sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, a->m, a->n, a->k, 1.0f, a->x, a->k, a->w, a->n, 0.0f,
                 a->c, a->n);
        return;
    }
    ob.sgemm(ROW_MAJOR, NO_TRANS, TRANS, a->m, a->k, a->n, 1.0f, a->dy, a->n, a->w, a->n, 0.0f, a->dx,
             a->k);
    ob.sgemm(ROW_MAJOR, TRANS, NO_TRANS, a->k, a->n, a->m, 1.0f, a->x, a->k, a->dy, a->n, 0.0f, a->dw,
             a->n);
}

static void bench_matmul(int m, int k, int n) {
    char shape[64], label[96];
    snprintf(shape, sizeof shape, "[%d,%d]x[%d,%d]", m, k, k, n);
    snprintf(label, sizeof label, "matmul %s", shape);
    nb_tensor *t[2] = {nb_tensor_new(2, (int[]){m, k}), nb_tensor_new(2, (int[]){k, n})};
    float *c = falloc((size_t)m * n), *dy = falloc((size_t)m * n);
    float *dx = falloc((size_t)m * k), *dw = falloc((size_t)k * n);
    graphs gr = {0};
    bool ok = t[0] && t[1] && c && dy && dx && dw;
    if (!ok) {
        fprintf(stderr, "nabla-bench: %s: out of memory\n", label);
    } else {
        fill_normal(t[0]->data, t[0]->size, 1);
        fill_normal(t[1]->data, t[1]->size, 2);
        for (size_t i = 0; i < (size_t)m * n; i++) dy[i] = 1.0f; /* the seed's dy */
        memset(dx, 0, sizeof(float) * (size_t)m * k), memset(dw, 0, sizeof(float) * (size_t)k * n);
        ok = make_graphs(&gr, t, (bool[]){false, false}, 2, m, build_matmul, NULL, label);
    }
    if (!ok) n_failed++;
    double flops = 2.0 * m * n * k;
    for (int ti = 0; ok && ti < opt.n_threads; ti++) {
        int th = opt.threads[ti];
        nb_set_num_threads(th);
        cpu_mark c0 = cpu_now();
        /* nabla and BLIS share libgomp's threads: interleaved */
        nbb_job jobs[6];
        nbb_stats st[6];
        graph_jobs gj;
        graph_jobs_of(&gr, &gj, jobs);
        gemm_arg af = {th, m, n, k, false, t[0]->data, t[1]->data, dy, c, dx, dw}, ab = af;
        ab.bwd = true;
        jobs[4] = (nbb_job){blis_fn, &af};
        jobs[5] = (nbb_job){blis_fn, &ab};
        measure_set(jobs, 6, st);
        double bl[2] = {st[4].med, st[5].med}, obl[2] = {0, 0};
        /* OpenBLAS's idle workers spin for a while after a threaded call,
         * and libgomp's after nabla's and BLIS's: OpenBLAS gets a block of
         * its own, after a pause, and a longer pause follows it */
        if (ob.sgemm) {
            ob.set_threads(th);
            if (th > 1) sleep_s(0.02);
            nbb_stats os[2];
            measure_set((nbb_job[]){{openblas_fn, &af}, {openblas_fn, &ab}}, 2, os);
            obl[0] = os[0].med, obl[1] = os[1].med;
        }
        double others = others_share(c0, cpu_now());
        if (ob.sgemm && th > 1) sleep_s(0.2);
        row f = {"matmul", "fwd", shape, th, st[0], st[1], true, flops, "blis", "openblas", bl[0], obl[0], 0, 0, 0, 0, 0};
        row bw = {"matmul", "bwd", shape, th, st[2], st[3], true, 2 * flops, "blis", "openblas", bl[1], obl[1], 0, 0, 0, 0, 0};
        if (!ob.sgemm) f.lim2 = bw.lim2 = NULL;
        f.others = bw.others = others;
        print_row(&f);
        print_row(&bw);
    }
    free_graphs(&gr);
    free(c), free(dy), free(dx), free(dw);
    nb_tensor_free(t[0]), nb_tensor_free(t[1]);
    free_kept();
}

/* ---- the other ops ---- */

static nb_node *b_add(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_add(g, in[0], in[1]); }
static nb_node *b_mul(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_mul(g, in[0], in[1]); }
static nb_node *b_relu(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_relu(g, in[0]); }
static nb_node *b_leaky(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_leaky_relu(g, in[0], 0.2f); }
static nb_node *b_elu(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_elu(g, in[0], 1.0f); }
static nb_node *b_selu(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_selu(g, in[0]); }
static nb_node *b_gelu(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_gelu(g, in[0]); }
static nb_node *b_swish(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_swish(g, in[0]); }
static nb_node *b_sigmoid(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_sigmoid(g, in[0]); }
static nb_node *b_tanh(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_tanh(g, in[0]); }
static nb_node *b_softplus(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_softplus(g, in[0]); }
static nb_node *b_softmax(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_softmax(g, in[0]); }
static nb_node *b_log_softmax(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_log_softmax(g, in[0]); }
static nb_node *b_sce(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_softmax_cross_entropy(g, in[0], in[1]); }
static nb_node *b_mse(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_mse(g, in[0], in[1]); }
static nb_node *b_dropout(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_dropout(g, in[0], 0.2f); }
static nb_node *b_alpha_dropout(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_alpha_dropout(g, in[0], 0.2f); }
static nb_node *b_sum_squares(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_sum_squares(g, in[0]); }
static nb_node *b_l2_norm(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_l2_norm(g, in[0]); }
static nb_node *b_layernorm(nb_graph *g, nb_node *const *in, void *u) { (void)u; return nb_layernorm(g, in[0], in[1], in[2], 1e-3f); }

static nb_node *b_batchnorm(nb_graph *g, nb_node *const *in, void *u) {
    (void)u;
    nb_shape s = nb_node_shape(in[0]);
    int f = s.dim[s.rank - 1];
    nb_tensor *rm = nb_tensor_new(1, &f), *rv = nb_tensor_new(1, &f);
    if (!rm || !rv) {
        nb_tensor_free(rm), nb_tensor_free(rv);
        nb_graph_fail(g, "batchnorm: %s", nb_last_error());
        return NULL;
    }
    for (int j = 0; j < f; j++) rv->data[j] = 1.0f;
    nbb_keep(rm), nbb_keep(rv);
    return nb_batchnorm(g, in[0], in[1], in[2], rm, rv, 0.99f, 1e-3f);
}

/* A user-style custom op, run only with --op custom_cube: y = x^3. It is
 * the example of README.md and of nabla/custom.h. */
static int cube_shape(int n, const nb_shape *in, nb_shape *out, void *u, char *err, size_t len) {
    (void)n, (void)u, (void)err, (void)len;
    *out = in[0];
    return 0;
}
static void cube_fwd(int n, const float *const *in, const nb_shape *s, float *y, const nb_shape *ys,
                     void *u) {
    (void)n, (void)s, (void)u;
    const float *x = in[0];
    for (size_t i = 0, size = nb_shape_size(ys); i < size; i++) y[i] = x[i] * x[i] * x[i];
}
static void cube_bwd(int n, const float *const *in, const nb_shape *s, const float *y,
                     const float *dy, const nb_shape *ys, float *const *din, void *u) {
    (void)n, (void)s, (void)y, (void)u;
    const float *x = in[0];
    if (!din[0]) return;
    for (size_t i = 0, size = nb_shape_size(ys); i < size; i++) din[0][i] += 3.0f * x[i] * x[i] * dy[i];
}
static const nb_custom_op cube_op = {"cube", cube_shape, cube_fwd, cube_bwd};
static nb_node *b_cube(nb_graph *g, nb_node *const *in, void *u) {
    (void)u;
    return nb_custom(g, &cube_op, 1, in, NULL);
}

/* Bytes per pass (README.md explains each count): {per element, per row, per feature}. */
static const nbb_op builtin_ops[] = {
    {"add",           "xf",  b_add,           NULL, {8, 0, 4},   {12, 0, 8},   false, false},
    {"mul",           "xx",  b_mul,           NULL, {12, 0, 0},  {28, 0, 0},   false, false},
    {"relu",          "x",   b_relu,          NULL, {8, 0, 0},   {16, 0, 0},   false, false},
    {"leaky_relu",    "x",   b_leaky,         NULL, {8, 0, 0},   {16, 0, 0},   false, false},
    {"elu",           "x",   b_elu,           NULL, {8, 0, 0},   {20, 0, 0},   false, false},
    {"selu",          "x",   b_selu,          NULL, {8, 0, 0},   {20, 0, 0},   false, false},
    {"gelu",          "x",   b_gelu,          NULL, {8, 0, 0},   {16, 0, 0},   false, false},
    {"swish",         "x",   b_swish,         NULL, {8, 0, 0},   {16, 0, 0},   false, false},
    {"sigmoid",       "x",   b_sigmoid,       NULL, {8, 0, 0},   {16, 0, 0},   false, false},
    {"tanh",          "x",   b_tanh,          NULL, {8, 0, 0},   {16, 0, 0},   false, false},
    {"softplus",      "x",   b_softplus,      NULL, {8, 0, 0},   {16, 0, 0},   false, false},
    {"softmax",       "x",   b_softmax,       NULL, {8, 0, 0},   {16, 0, 0},   true,  false},
    {"log_softmax",   "x",   b_log_softmax,   NULL, {8, 0, 0},   {16, 0, 0},   true,  false},
    {"softmax_cross_entropy", "xl", b_sce,    NULL, {8, 12, 0},  {12, 4, 0},   true,  false},
    {"mse",           "xc",  b_mse,           NULL, {8, 8, 0},   {16, 0, 0},   true,  false},
    {"batchnorm",     "xff", b_batchnorm,     NULL, {8, 0, 32},  {16, 0, 28},  false, false},
    {"layernorm",     "xff", b_layernorm,     NULL, {8, 8, 8},   {16, 8, 20},  false, false},
    {"dropout",       "x",   b_dropout,       NULL, {12, 0, 0},  {16, 0, 0},   false, false},
    {"alpha_dropout", "x",   b_alpha_dropout, NULL, {12, 0, 0},  {16, 0, 0},   false, false},
    {"sum_squares",   "x",   b_sum_squares,   NULL, {4, 0, 0},   {12, 0, 0},   false, false},
    {"l2_norm",       "x",   b_l2_norm,       NULL, {4, 0, 0},   {12, 0, 0},   false, false},
    {"custom_cube",   "x",   b_cube,          NULL, {8, 0, 0},   {16, 0, 0},   false, true},
};

static double bytes_of(nbb_bytes b, int r, int f) {
    return b.elem * (double)r * f + b.row * r + b.feature * f;
}

static void bench_op(const nbb_op *op, int r, int f) {
    char shape[64], label[128];
    snprintf(shape, sizeof shape, "[%d,%d]", r, f);
    snprintf(label, sizeof label, "%s %s", op->name, shape);
    int n_in = (int)strlen(op->inputs);
    if (n_in < 1 || n_in > NB_CUSTOM_MAX_INPUTS) {
        fprintf(stderr, "nabla-bench: %s: inputs \"%s\" must be 1 to %d letters\n", op->name,
                op->inputs, NB_CUSTOM_MAX_INPUTS);
        n_failed++;
        return;
    }
    nb_tensor *t[NB_CUSTOM_MAX_INPUTS] = {0};
    bool is_const[NB_CUSTOM_MAX_INPUTS];
    bool ok = true;
    for (int i = 0; i < n_in && ok; i++) {
        char kind = op->inputs[i];
        is_const[i] = kind == 'c' || kind == 'l';
        if (kind == 'x' || kind == 'c') t[i] = nb_tensor_new(2, (int[]){r, f});
        else if (kind == 'f') t[i] = nb_tensor_new(1, &f);
        else if (kind == 'l') t[i] = nb_tensor_new(1, &r);
        else {
            fprintf(stderr, "nabla-bench: %s: input letter '%c' is none of x, c, f, l\n", op->name, kind);
            ok = false;
            break;
        }
        if (!t[i]) {
            fprintf(stderr, "nabla-bench: %s: %s\n", label, nb_last_error());
            ok = false;
            break;
        }
        if (kind == 'l') {
            nb_rng rng;
            nb_rng_seed(&rng, 3, (uint64_t)i);
            for (int j = 0; j < r; j++) t[i]->data[j] = (float)nb_rng_below(&rng, (uint32_t)f);
        } else {
            fill_normal(t[i]->data, t[i]->size, 10 + (uint64_t)i);
        }
    }
    graphs gr = {0};
    if (ok) ok = make_graphs(&gr, t, is_const, n_in, r, op->build, op->user, label);
    if (!ok) n_failed++;
    size_t n = (size_t)r * f; /* the copy limit's size: the op's largest tensor */
    if (ok && nb_shape_size(&gr.yshape) > n) n = nb_shape_size(&gr.yshape);
    float *copy_buf = NULL;
    copy_arg c0a = {0}, ca[4];
    if (ok) {
        c0a = copy_setup(n, 1, &copy_buf);
        if (!copy_buf) ok = false, n_failed++;
    }
    for (int ti = 0; ok && ti < opt.n_threads; ti++) {
        int th = opt.threads[ti];
        nb_set_num_threads(th);
        cpu_mark c0 = cpu_now();
        nbb_job jobs[8];
        nbb_stats st[8];
        graph_jobs gj;
        graph_jobs_of(&gr, &gj, jobs);
        /* the copies: loop and memcpy, serial and (with threads) split */
        int n_copy = 0;
        for (int kind = 0; kind < 2; kind++)
            for (int split = 0; split < (th > 1 ? 2 : 1); split++) {
                ca[n_copy] = c0a;
                ca[n_copy].kind = kind, ca[n_copy].threads = split ? th : 1;
                jobs[4 + n_copy] = (nbb_job){copy_fn, &ca[n_copy]};
                n_copy++;
            }
        measure_set(jobs, 4 + n_copy, st);
        /* the limit: the fastest copy */
        int best = 0;
        for (int c = 1; c < n_copy; c++)
            if (st[4 + c].med < st[4 + best].med) best = c;
        double copy_s = st[4 + best].med;
        int which = ca[best].threads, kind = ca[best].kind;
        double others = others_share(c0, cpu_now());
        /* the copy moves 8n bytes; the limit for this op's bytes scales with them */
        double fb = bytes_of(op->fwd, r, f), bb = bytes_of(op->bwd, r, f);
        row fr = {op->name, "fwd", shape, th, st[0], st[1], false, fb, "copy", NULL,
                  copy_s * fb / (8.0 * (double)n), 0, n, which, kind, copy_s, 0};
        row br = {op->name, "bwd", shape, th, st[2], st[3], false, bb, "copy", NULL,
                  copy_s * bb / (8.0 * (double)n), 0, n, which, kind, copy_s, 0};
        fr.others = br.others = others;
        print_row(&fr);
        print_row(&br);
    }
    free_graphs(&gr);
    free(copy_buf);
    for (int i = 0; i < n_in; i++) nb_tensor_free(t[i]);
    free_kept();
}

/* ---- main ---- */

static bool selected(const char *name, bool extra) {
    if (!opt.filter[0]) return !extra;
    size_t len = strlen(name);
    for (const char *p = opt.filter; *p;) {
        const char *end = strchr(p, ',');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (l == len && strncmp(p, name, l) == 0) return true;
        p += l + (end ? 1 : 0);
    }
    return false;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: nabla-bench [--quick] [--json | --json-out FILE] [--op NAME[,NAME...]] [--threads 1,2]\n"
            "                   [--shapes RxF[,RxF...]] [--reps N] [--budget SECONDS] [--no-openblas] [--list]\n"
            "  --quick        fewer shapes (batch 32 and 256, 1M elements), 20 runs, 0.05 s budget\n"
            "  --json         one JSON object per line instead of the table\n"
            "  --json-out F   the table, and the JSON lines into file F\n"
            "  --op NAMES     only these ops (see --list); repeatable\n"
            "  --list         print the op names and exit\n"
            "  --threads L    thread counts, comma-separated (default 1,2)\n"
            "  --shapes L     [R,F] shapes for every op but matmul, e.g. 32x1000,256x1000\n"
            "                 (in place of the defaults; every selected op runs on each)\n"
            "  --reps N       samples per measurement, at most (default 200; a sample times\n"
            "                 back-to-back calls lasting 20 us or more)\n"
            "  --budget S     seconds of timed runs per measurement, at most (default 0.1;\n"
            "                 at least 5 runs are always made)\n"
            "  --no-openblas  do not load OpenBLAS\n");
}

static const char *cpu_model(void) {
    static char name[128] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return name;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ') c++;
                snprintf(name, sizeof name, "%s", c);
                name[strcspn(name, "\n")] = 0;
            }
            break;
        }
    fclose(f);
    return name;
}

static bool parse_threads(const char *s) {
    opt.n_threads = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1024 || opt.n_threads == 8) return false;
        opt.threads[opt.n_threads++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return false;
    }
    return opt.n_threads > 0;
}

/* "32x1000,256x1000" into opt.shapes */
static bool parse_shapes(const char *s) {
    opt.n_shapes = 0;
    while (*s) {
        char *end;
        long r = strtol(s, &end, 10), f;
        if (end == s || r < 1 || r > (1L << 24) || (*end != 'x' && *end != 'X') || opt.n_shapes == MAX_SHAPES)
            return false;
        s = end + 1;
        f = strtol(s, &end, 10);
        if (end == s || f < 1 || f > (1L << 24) || r * f > (1L << 30)) return false;
        opt.shapes[opt.n_shapes][0] = (int)r, opt.shapes[opt.n_shapes][1] = (int)f;
        opt.n_shapes++;
        s = end;
        if (*s == ',') s++;
        else if (*s) return false;
    }
    return opt.n_shapes > 0;
}

int nbb_main(int argc, char **argv, const nbb_op *user_ops, int n_user_ops) {
    bool reps_set = false, budget_set = false, list = false;
    /* a second call starts afresh */
    opt = default_opt;
    n_failed = n_busy_rows = 0;
    header_done = false;
    jf = NULL;
    if (n_user_ops < 0 || (n_user_ops > 0 && !user_ops)) {
        fprintf(stderr, "nabla-bench: nbb_main: %d user ops at %p\n", n_user_ops, (const void *)user_ops);
        return 2;
    }
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) opt.quick = true;
        else if (!strcmp(a, "--json")) opt.json = true;
        else if (!strcmp(a, "--json-out") && v) json_path = v, i++;
        else if (!strcmp(a, "--no-openblas")) opt.openblas = false;
        else if (!strcmp(a, "--list")) list = true;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--op") && v) {
            size_t len = strlen(opt.filter);
            snprintf(opt.filter + len, sizeof opt.filter - len, "%s%s", len ? "," : "", v);
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            if (!parse_threads(v)) {
                fprintf(stderr, "nabla-bench: bad --threads '%s' (a list like 1,2)\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--shapes") && v) {
            if (!parse_shapes(v)) {
                fprintf(stderr, "nabla-bench: bad --shapes '%s' (a list like 32x1000,256x1000; at most %d)\n", v,
                        MAX_SHAPES);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--reps") && v) {
            opt.reps = atoi(v), reps_set = true, i++;
            if (opt.reps < 1) {
                fprintf(stderr, "nabla-bench: --reps must be >= 1\n");
                return 2;
            }
        } else if (!strcmp(a, "--budget") && v) {
            opt.budget = atof(v), budget_set = true, i++;
            if (!(opt.budget > 0)) {
                fprintf(stderr, "nabla-bench: --budget must be > 0\n");
                return 2;
            }
        } else {
            fprintf(stderr, "nabla-bench: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (opt.quick) {
        if (!reps_set) opt.reps = 20;
        if (!budget_set) opt.budget = 0.05;
    }
    if (opt.min_reps > opt.reps) opt.min_reps = opt.reps;
    if (opt.reps > 4096) opt.reps = 4096;

    /* every op this program knows: the built-in ones, then the user's */
    int n_ops = (int)(sizeof builtin_ops / sizeof builtin_ops[0]) + n_user_ops;
    const nbb_op **ops = malloc(sizeof *ops * (size_t)n_ops);
    if (!ops) return 1;
    int k = 0;
    for (size_t i = 0; i < sizeof builtin_ops / sizeof builtin_ops[0]; i++) ops[k++] = &builtin_ops[i];
    for (int i = 0; i < n_user_ops; i++) ops[k++] = &user_ops[i];
    /* a user op needs a name, a build and a name of its own: --op could not tell them apart */
    for (int i = n_ops - n_user_ops; i < n_ops; i++) {
        const char *name = ops[i]->name;
        bool bad = !name || !name[0] || strchr(name, ',') || !ops[i]->build || !ops[i]->inputs;
        for (int j = 0; j < i && !bad; j++) bad = !strcmp(name, ops[j]->name);
        if (!bad) bad = !strcmp(name, "matmul");
        if (bad) {
            fprintf(stderr, "nabla-bench: user op %d (\"%s\") lacks a name, inputs or build, or its name is taken\n",
                    i - (n_ops - n_user_ops), name ? name : "(null)");
            free(ops);
            return 2;
        }
    }
    if (list) {
        printf("matmul\n");
        for (int i = 0; i < n_ops; i++) printf("%s%s\n", ops[i]->name, ops[i]->extra ? " (only with --op)" : "");
        free(ops);
        return 0;
    }
    /* names given to --op must exist */
    for (const char *p = opt.filter; *p;) {
        const char *end = strchr(p, ',');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        bool found = l == 6 && !strncmp(p, "matmul", 6);
        for (int i = 0; i < n_ops && !found; i++)
            found = strlen(ops[i]->name) == l && !strncmp(p, ops[i]->name, l);
        if (!found && l) {
            fprintf(stderr, "nabla-bench: no op named '%.*s' (--list shows them)\n", (int)l, p);
            free(ops);
            return 2;
        }
        p += l + (end ? 1 : 0);
    }

    if (opt.json) jf = stdout;
    else if (json_path && !(jf = fopen(json_path, "w"))) {
        fprintf(stderr, "nabla-bench: cannot write %s\n", json_path);
        free(ops);
        return 1;
    }
    double t_start = now();
    cpu_mark run_start = cpu_now();
    nb_set_num_threads(opt.threads[0]); /* initializes nabla and BLIS */
    /* the thread count is what each row measures: the pace governor would
     * time the other jobs interleaved between a graph's passes and pick a
     * count of its own (graph/pace.h) */
    nb_set_thread_adaptation(false);
    bool want_matmul = selected("matmul", false);
    if (want_matmul) openblas_load();
    else snprintf(ob.note, sizeof ob.note, "not loaded (matmul not selected)");

    int max_threads = 1;
    for (int i = 0; i < opt.n_threads; i++)
        if (opt.threads[i] > max_threads) max_threads = opt.threads[i];
    spin_up(max_threads, opt.quick ? 0.2 : 0.5);
    const char *arch = nb_blis_arch(), *kern = nb_blis_kernel();
    char thr[64] = "";
    for (int i = 0; i < opt.n_threads; i++)
        snprintf(thr + strlen(thr), sizeof thr - strlen(thr), "%s%d", i ? "," : "", opt.threads[i]);
    if (jf) {
        fprintf(jf, "{\"type\":\"info\"");
        json_str("cpu", cpu_model());
        fprintf(jf, ",\"cores\":%d", omp_get_num_procs());
        json_str("blis_version", bli_info_get_version_str());
        json_str("blis_arch", arch);
        json_str("blis_kernel", kern);
        json_str("openblas", ob.sgemm ? ob.note : "");
        if (!ob.sgemm) json_str("openblas_note", ob.note);
        json_str("openblas_env_unset", ob.unset);
        json_str("threads", thr);
        fprintf(jf, ",\"max_runs\":%d,\"budget_s\":%g,\"quick\":%s}\n", opt.reps, opt.budget,
                opt.quick ? "true" : "false");
    }
    if (!opt.json) {
        printf("nabla-bench on %s (%d cores)\n", cpu_model(), omp_get_num_procs());
        printf("BLIS %s: sub-configuration %s, sgemm micro-kernel %s%s\n", bli_info_get_version_str(),
               arch, kern, !strcmp(kern, "refrnce") ? " (the slow reference kernel!)" : "");
        printf("OpenBLAS: %s%s%s\n", ob.note, ob.unset[0] ? "; unset for it: " : "", ob.unset);
        printf("threads %s; medians of up to %d runs (at most %.2g s of runs per measurement, 3 warm-ups)\n",
               thr, opt.reps, opt.budget);
        printf("net = raw - baseline (the same graph with the op replaced by a no-op); rates from net.\n"
               "matmul: %% of a bare BLIS / OpenBLAS sgemm of the same shapes (backward: dX and dW).\n"
               "others: %% of the fastest copy of the op's largest tensor (see below).\n");
        double lg, mg;
        copy_vs_memcpy((size_t)1 << 22, &lg, &mg);
        printf("serial copy of 4M floats: copy loop %.1f GB/s, glibc memcpy %.1f GB/s\n"
               "(the copy limit is the fastest of loop and memcpy, serial and split over the threads)\n\n", lg, mg);
    }
    fflush(stdout);

    static const int batches_full[] = {32, 256, 1024}, batches_quick[] = {32, 256};
    static const int layers[][2] = {{784, 300}, {300, 100}, {100, 10}, {784, 100}, {100, 100}};
    const int *batches = opt.quick ? batches_quick : batches_full;
    int n_batches = opt.quick ? 2 : 3;
    if (want_matmul)
        for (int b = 0; b < n_batches; b++)
            for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++)
                bench_matmul(batches[b], layers[l][0], layers[l][1]);

    /* [B,300] and [B,100] at batch 32 and 256, [B,10] for the output-layer
     * ops, and 1M and 4M elements as [4096,256] and [16384,256] */
    static const int shapes_full[][2] = {{32, 10}, {256, 10}, {32, 100}, {32, 300}, {256, 100}, {256, 300},
                                         {4096, 256}, {16384, 256}};
    static const int shapes_quick[][2] = {{32, 10}, {32, 300}, {256, 300}, {4096, 256}};
    const int(*shapes)[2] = opt.quick ? shapes_quick : shapes_full;
    int n_shapes = opt.quick ? 4 : 8;
    if (opt.n_shapes) shapes = (const int(*)[2])opt.shapes, n_shapes = opt.n_shapes;
    for (int i = 0; i < n_ops; i++) {
        if (!selected(ops[i]->name, ops[i]->extra)) continue;
        for (int s = 0; s < n_shapes; s++) {
            if (!opt.n_shapes && shapes[s][1] == 10 && !ops[i]->logits) continue;
            bench_op(ops[i], shapes[s][0], shapes[s][1]);
        }
    }
    free(ops);
    double wall = now() - t_start, others = others_share(run_start, cpu_now());
    if (jf) {
        fprintf(jf, "{\"type\":\"summary\",\"seconds\":%.1f,\"others_cpu_share\":%.3f,\"busy_rows\":%d}\n",
                wall, others, n_busy_rows);
        if (jf != stdout) fclose(jf);
        jf = NULL;
    }
    if (!opt.json) {
        printf("\n%.0f s; other processes took %.0f%% of the CPUs during the run.\n", wall, 100 * others);
        if (n_busy_rows)
            printf("%d rows (marked *) ran while other processes took more than %.0f%% of the CPUs:\n"
                   "their times, above all at 2 threads, are not to be trusted; rerun them with --op.\n",
                   n_busy_rows, 100 * BUSY_SHARE);
    }
    if (n_failed) fprintf(stderr, "nabla-bench: %d cases failed (see above)\n", n_failed);
    return n_failed ? 1 : 0;
}
