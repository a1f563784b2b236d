/* graph/run.c — planning the arena, feeding inputs, forward and backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/barrier.h"
#include "graph/internal.h"

#define ALIGN_FLOATS 16 /* 64 bytes */

static size_t round_up(size_t n) { return (n + ALIGN_FLOATS - 1) & ~(size_t)(ALIGN_FLOATS - 1); }

static bool owns_buffers(const nb_node *n) { return n->kind == NB_KIND_OP && !n->op->view; }


/* One allocation for every op node's value, gradient and aux, and the ops'
 * shared workspace, sized for the largest batch: every shape is inferred
 * again at the declared batches first, whatever batch the graph last ran
 * at (it may have grown since). Views and leaves own nothing here. */
static nb_status plan(nb_graph *g) {
    size_t total = 0, scratch = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        if (n->kind == NB_KIND_INPUT) {
            n->shape.dim[0] = n->max_batch;
            n->size = nb_shape_size(&n->shape);
        } else if (n->kind == NB_KIND_OP) {
            if (n->op->infer(g, n) != NB_OK) return NB_ERROR;
            n->capacity = n->size;
            n->aux_capacity = n->op->aux ? n->op->aux(n) : 0;
        }
        if (!owns_buffers(n)) continue;
        total += 2 * round_up(n->capacity) + round_up(n->aux_capacity);
        if (n->op->scratch) {
            size_t s = n->op->scratch(n);
            scratch = s > scratch ? s : scratch;
        }
    }
    g->batch = -1; /* the next forward pass brings the shapes to its batch */
    g->team = false;
    total += round_up(scratch);
    free(g->arena);
    g->arena = NULL;
    g->arena_bytes = 0;
    float *a = NULL;
    if (total) {
        a = nb__aligned_alloc(total * sizeof(float));
        if (!a)
            return nb__fail_kind(g, NB_ERR_OUT_OF_MEMORY, "graph: out of memory planning %zu bytes",
                                 total * sizeof(float));
        memset(a, 0, total * sizeof(float));
    }
    size_t off = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        if (!owns_buffers(n)) continue;
        n->value = a + off;
        off += round_up(n->capacity);
        n->grad_buf = a + off;
        off += round_up(n->capacity);
        n->aux = n->aux_capacity ? a + off : NULL;
        off += round_up(n->aux_capacity);
    }
    g->scratch = scratch ? a + off : NULL;
    g->scratch_capacity = scratch;
    g->arena = a;
    g->arena_bytes = total * sizeof(float);
    g->planned = true;
    return NB_OK;
}

nb_status nb_feed(nb_graph *g, nb_node *input, const float *data, int batch) {
    if (!g || g->status != NB_OK) return NB_ERROR;
    if (!input) return nb__fail(g, "feed: input is NULL");
    if (input->graph != g) return nb__fail(g, "feed: node '%s' belongs to another graph", input->name);
    if (input->kind != NB_KIND_INPUT)
        return nb__fail(g, "feed: node '%s' is a %s, not an input", input->name, nb_node_op(input));
    if (!data) return nb__fail(g, "feed: data for input '%s' is NULL", input->name);
    if (batch < 1 || batch > input->max_batch)
        return nb__fail(g, "feed: batch %d for input '%s' outside [1,%d], the batch it was declared with",
                        batch, input->name, input->max_batch);
    input->value = (float *)data; /* inputs are never written */
    input->fed_batch = batch;
    return NB_OK;
}

/* ---- the team: one parallel region per pass at small batches ----
 *
 * At batch 32 most ops take a microsecond or two, and opening a parallel
 * region costs a few, so every op but the matrix products runs serially,
 * and a product big enough to be worth two threads used to open a region
 * of its own, several per step. Instead, when no op's output reaches
 * NB_TEAM_MAX_ELEMENTS (graph/parallel.h), each pass runs in one region: thread 0 runs the ops one after the other, and the team meets
 * only around the ops that share their work (nb_op.shares), at a barrier
 * before one (when thread 0 wrote something since the last) and one after. */

static bool team_fits(const nb_graph *g) {
    bool shares = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const nb_node *n = g->nodes[i];
        if (n->kind != NB_KIND_OP) continue;
        shares |= n->op->shares != NULL;
        if (n->size >= NB_TEAM_MAX_ELEMENTS) return false;
    }
    return shares;
}

/* The team's size for a pass of nt threads, or 1 to run it on the
 * calling thread. */
static int team_size(const nb_graph *g, int nt) {
    if (!g->team || g->check_finite || omp_in_parallel()) return 1;
    return nt;
}

/* ---- the pace: how many threads a step runs on (graph/pace.h) ----
 *
 * The governor times whole cycles, from one forward pass of a kind to the
 * next: a training step's forward, backward, optimizer update and the
 * gather of the next batch all run at the count the forward pass chose
 * (regions outside passes take the count of the last forward pass), and
 * all of it is what a thread count makes faster or slower: workers that
 * wait between passes take CPU time from the thread that works. */

/* Ends the cycle of kind p that the last forward pass of that kind began,
 * and returns the count the new one runs at. */
static int cycle_begin(nb_graph *g, nb_pace *p) {
    const int full = nb__threads_configured();
    int nt = full;
    if (full > 1 && nb__threads_adaptive() && !omp_in_parallel()) {
        const double t = nb__pace_now();
        if (p->measure) nb__pace_end(p, t - p->started, t);
        nt = nb__pace_begin(p, full, nb__threads_settled(), g->batch, t);
    } else {
        p->measure = false, p->probing = -1;
    }
    g->threads = nt;
    nb__threads_for_pass(nt, true);
    return nt;
}

static nb_status pass_end(nb_status st) {
    nb__threads_for_pass(0, false);
    return st;
}

/* Brings every shape up to the fed batch. */
static nb_status reshape_for_batch(nb_graph *g, int batch) {
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        if (n->kind == NB_KIND_INPUT) {
            n->shape.dim[0] = batch;
            n->size = nb_shape_size(&n->shape);
        } else if (n->kind == NB_KIND_OP) {
            if (n->op->infer(g, n) != NB_OK) return NB_ERROR;
            if (n->size > n->capacity || (n->op->aux && n->op->aux(n) > n->aux_capacity) ||
                (n->op->scratch && n->op->scratch(n) > g->scratch_capacity)) {
                char s[NB_SHAPE_STR_LEN];
                return nb__fail(g, "%s: node '%s' grew to %s at batch %d, beyond what was planned",
                                n->op->name, n->name, nb__shape(n, s), batch);
            }
        }
    }
    g->batch = batch;
    g->team = team_fits(g);
    return NB_OK;
}

static nb_status check_finite(nb_graph *g, const char *pass, const nb_node *n, const float *x,
                              size_t size) {
    for (size_t i = 0; i < size; i++)
        if (!isfinite(x[i]))
            return nb__fail_kind(g, NB_ERR_NONFINITE, "%s: non-finite value %g in node '%s' (op %s) at index %zu",
                                 pass, (double)x[i], n->name, nb_node_op(n), i);
    return NB_OK;
}

static bool runs(const nb_node *n) { return n->kind == NB_KIND_OP && !n->op->view; }

static nb_status forward_one(nb_graph *g, nb_node *n) {
    if (n->op->forward(g, n) != NB_OK) {
        if (g->status == NB_OK) nb__fail(g, "%s: forward failed in node '%s'", n->op->name, n->name);
        return NB_ERROR;
    }
    if (g->check_finite && check_finite(g, "forward", n, n->value, n->size) != NB_OK) return NB_ERROR;
    return NB_OK;
}

static nb_status forward_serial(nb_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        if (runs(g->nodes[i]) && forward_one(g, g->nodes[i]) != NB_OK) return NB_ERROR;
    return NB_OK;
}

static nb_status team_pass(nb_graph *g, const nb_node *loss, int nt);

nb_status nb__forward_at(nb_graph *g, nb_mode mode, uint64_t step) {
    if (!g || g->status != NB_OK) return NB_ERROR;
    if (mode != NB_TRAINING && mode != NB_INFERENCE)
        return nb__fail(g, "forward: mode %d is neither NB_TRAINING nor NB_INFERENCE", (int)mode);
    if (!g->planned && plan(g) != NB_OK) return NB_ERROR;

    int batch = 0;
    const nb_node *first = NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const nb_node *n = g->nodes[i];
        if (n->kind != NB_KIND_INPUT) continue;
        if (!n->fed_batch) return nb__fail(g, "forward: input '%s' was not fed", n->name);
        if (first && n->fed_batch != batch)
            return nb__fail(g, "forward: inputs fed with different batch sizes: '%s' %d, '%s' %d",
                            first->name, batch, n->name, n->fed_batch);
        if (!first) first = n, batch = n->fed_batch;
    }
    if (first && batch != g->batch && reshape_for_batch(g, batch) != NB_OK) return NB_ERROR;

    g->mode = mode;
    g->step = step;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        if (n->kind == NB_KIND_PARAM || n->kind == NB_KIND_CONST)
            n->value = n->tensor->data;
        else if (n->kind == NB_KIND_OP && n->op->view)
            n->value = n->in[0]->value;
    }
    const int nt = team_size(g, cycle_begin(g, &g->pace[mode == NB_TRAINING ? 0 : 1]));
    return pass_end(nt > 1 ? team_pass(g, NULL, nt) : forward_serial(g));
}

nb_status nb_forward(nb_graph *g, nb_mode mode) {
    if (!g || g->status != NB_OK) return NB_ERROR;
    nb_status st = nb__forward_at(g, mode, g->step);
    g->step++;
    return st;
}

static bool has_backward(const nb_node *n) { return n->kind == NB_KIND_OP && n->grad && !n->op->view; }

/* The first op of the backward pass to write a node's gradient may
 * overwrite it when its op can (nb_op.assigns: matmul's beta 0), and the
 * buffer then needs no zeroing: a step of model a zeroes a megabyte of
 * weight gradients otherwise. Not for a buffer a view shares, where writers
 * through the view and around it are hard to order. */
static void claim_first_writers(nb_graph *g, nb_node *loss) {
    for (int i = 0; i <= loss->id; i++) g->nodes[i]->claimed = g->nodes[i]->written = g->nodes[i]->aliased = false;
    for (int i = 0; i <= loss->id; i++) {
        nb_node *n = g->nodes[i];
        if (n->kind == NB_KIND_OP && n->op->view) n->in[0]->aliased = true;
    }
    for (int i = loss->id; i >= 0; i--) {
        nb_node *n = g->nodes[i];
        if (n->kind != NB_KIND_OP) continue;
        n->assign = 0;
        if (!has_backward(n)) continue;
        for (int k = 0; k < n->n_in; k++) {
            nb_node *x = n->in[k];
            if (!x->grad || x->written) continue;
            x->written = true;
            if (n->op->assigns && !x->aliased && (x->kind == NB_KIND_PARAM || owns_buffers(x))) {
                n->assign |= 1u << k;
                x->claimed = true;
            }
        }
    }
}

/* Marks the nodes that get a gradient (need): those the loss depends on
 * (live) that lead to a trainable parameter. Touches no buffer. */
static void mark_needs(nb_graph *g, nb_node *loss) {
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->live = g->nodes[i]->need = false;
    loss->live = true;
    for (int i = loss->id; i >= 0; i--) {
        nb_node *n = g->nodes[i];
        if (n->live && n->kind == NB_KIND_OP)
            for (int k = 0; k < n->n_in; k++) n->in[k]->live = true;
    }
    for (int i = 0; i <= loss->id; i++) {
        nb_node *n = g->nodes[i];
        if (n->kind == NB_KIND_PARAM) n->need = n->live && n->tensor->trainable;
        else if (n->kind == NB_KIND_OP && n->live)
            for (int k = 0; k < n->n_in && !n->need; k++) n->need = n->in[k]->need;
    }
}

static bool backward_runs(const nb_node *n) { return n->kind == NB_KIND_OP && n->need && !n->op->view; }

/* For the grad-ready hook: hangs each trainable parameter on the op whose
 * backward completes its gradient, the lowest-numbered op that writes it
 * (through views too), since backward runs from the loss down. Nodes that
 * hold one tensor (a layer called twice) complete together, at the lowest
 * of their ops, on the first such node. A parameter no op writes goes on
 * g->ready_last. Needs mark_needs first. */
static void plan_ready(nb_graph *g, nb_node *loss) {
    g->ready_last = NULL;
    for (int i = 0; i <= loss->id; i++) g->nodes[i]->ready = g->nodes[i]->ready_next = NULL, g->nodes[i]->ready_at = -1;
    for (int i = 0; i <= loss->id; i++) {
        nb_node *n = g->nodes[i];
        if (!backward_runs(n)) continue;
        for (int k = 0; k < n->n_in; k++) {
            nb_node *x = n->in[k];
            while (x->kind == NB_KIND_OP && x->op->view) x = x->in[0];
            if (x->kind == NB_KIND_PARAM && x->need && x->ready_at < 0) x->ready_at = i;
        }
    }
    for (int i = loss->id; i >= 0; i--) {
        nb_node *p = g->nodes[i];
        if (p->kind != NB_KIND_PARAM || !p->need) continue;
        int at = p->ready_at;
        bool first = true;
        for (int j = 0; j < p->id; j++) {
            nb_node *q = g->nodes[j];
            if (q->kind != NB_KIND_PARAM || !q->need || q->tensor != p->tensor) continue;
            first = false; /* q hangs it, at the lower of the two */
            if (at >= 0 && (q->ready_at < 0 || at < q->ready_at)) q->ready_at = at;
        }
        if (!first) continue;
        nb_node **list = p->ready_at >= 0 ? &g->nodes[p->ready_at]->ready : &g->ready_last;
        p->ready_next = *list;
        *list = p;
    }
}

/* Points the gradients of the nodes that need one at their buffers and
 * zeroes them; everything else gets grad = NULL and is skipped. */
static nb_status prepare_grads(nb_graph *g, nb_node *loss) {
    mark_needs(g, loss);
    for (int i = 0; i <= loss->id; i++) {
        nb_node *n = g->nodes[i];
        if (n->kind == NB_KIND_PARAM) {
            if (n->need && nb__tensor_ensure_grad(n->tensor) != 0)
                return nb__fail_kind(g, NB_ERR_OUT_OF_MEMORY, "backward: out of memory for the gradient of '%s'",
                                     n->name);
            n->grad = n->need ? n->tensor->grad : NULL;
            /* a trainable parameter this loss does not reach has a zero
             * gradient, not the last loss's */
            if (!n->need && n->tensor->trainable && n->tensor->grad)
                memset(n->tensor->grad, 0, n->tensor->size * sizeof(float));
        } else if (n->kind == NB_KIND_OP && n->need) {
            n->grad = n->op->view ? n->in[0]->grad : n->grad_buf;
        } else {
            n->grad = NULL;
        }
    }
    if (g->grad_ready) plan_ready(g, loss);
    claim_first_writers(g, loss);
    for (int i = 0; i <= loss->id; i++) {
        nb_node *n = g->nodes[i];
        if (n->grad && (n->kind == NB_KIND_PARAM || owns_buffers(n)) && !n->claimed)
            memset(n->grad, 0, n->size * sizeof(float));
    }
    for (int i = loss->id + 1; i < g->n_nodes; i++) {
        nb_node *n = g->nodes[i];
        n->grad = NULL;
        if (n->kind == NB_KIND_PARAM && n->tensor->trainable && n->tensor->grad)
            memset(n->tensor->grad, 0, n->tensor->size * sizeof(float));
    }
    return NB_OK;
}

static nb_status backward_one(nb_graph *g, nb_node *n) {
    n->op->backward(g, n);
    if (g->status != NB_OK) return NB_ERROR;
    if (g->check_finite)
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k]->grad && check_finite(g, "backward", n, n->in[k]->grad, n->in[k]->size) != NB_OK)
                return NB_ERROR;
    return NB_OK;
}

/* The hook's calls once n's backward is done: each parameter it completes,
 * or NULL. */
static void fire_ready(nb_graph *g, const nb_node *n) {
    if (!g->grad_ready) return;
    if (!n->ready) g->grad_ready(g->grad_ready_user, NULL);
    for (const nb_node *p = n->ready; p; p = p->ready_next) g->grad_ready(g->grad_ready_user, p->tensor);
}

static void fire_last(nb_graph *g) {
    for (const nb_node *p = g->grad_ready ? g->ready_last : NULL; p; p = p->ready_next)
        g->grad_ready(g->grad_ready_user, p->tensor);
}

static nb_status backward_serial(nb_graph *g, nb_node *loss) {
    for (int i = loss->id; i >= 0; i--) {
        nb_node *n = g->nodes[i];
        if (!has_backward(n)) continue;
        if (backward_one(g, n) != NB_OK) return NB_ERROR;
        fire_ready(g, n);
    }
    fire_last(g);
    return NB_OK;
}

/* A pass in the team: forward over every node (loss NULL), or backward
 * from the loss down. Every thread takes the same decisions in the same
 * order, so they reach the same barriers; a failure is read right after a
 * barrier, where all threads see the same value. */
static nb_status team_pass(nb_graph *g, const nb_node *loss, int nt) {
    const bool backward = loss != NULL;
    const int count = backward ? loss->id + 1 : g->n_nodes;
    bool failed = false;
    nb_barrier bar;
    nb__barrier_init(&bar);
#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num(), team = omp_get_num_threads();
        nb__team_join(&bar, team);
        bool dirty = false;
        for (int k = 0; k < count; k++) {
            nb_node *n = g->nodes[backward ? loss->id - k : k];
            if (backward ? !has_backward(n) : !runs(n)) continue;
            if (team > 1 && n->op->shares && n->op->shares(n, backward)) {
                if (dirty) nb__team_sync();
                if (failed) break;
                (backward ? n->op->backward_team : n->op->forward_team)(g, n, tid, team);
                nb__team_sync();
                dirty = false;
                if (backward && tid == 0) fire_ready(g, n);
            } else {
                if (tid == 0 && !failed && (backward ? backward_one(g, n) : forward_one(g, n)) != NB_OK)
                    failed = true;
                if (backward && tid == 0 && !failed) fire_ready(g, n);
                dirty = true;
            }
        }
        if (backward && tid == 0 && !failed) fire_last(g);
        /* leave together: OpenMP's own barrier at the end of the region
         * spins for milliseconds, ours sleeps soon */
        if (team > 1) nb__team_sync();
        nb__team_join(NULL, 0);
    }
    return failed ? NB_ERROR : NB_OK;
}

nb_status nb_backward(nb_graph *g, nb_node *loss) {
    if (!g || g->status != NB_OK) return NB_ERROR;
    if (!loss) return nb__fail(g, "backward: loss is NULL");
    if (loss->graph != g) return nb__fail(g, "backward: loss '%s' belongs to another graph", loss->name);
    if (!loss->value) return nb__fail(g, "backward: run a forward pass first");
    if (loss->size != 1) {
        char s[NB_SHAPE_STR_LEN];
        return nb__fail(g, "backward: loss '%s' has shape %s, it must have one element",
                        loss->name, nb__shape(loss, s));
    }
    if (prepare_grads(g, loss) != NB_OK) return NB_ERROR;
    if (!loss->grad) return NB_OK; /* nothing trainable reaches the loss */
    loss->grad[0] = 1.0f;
    const int full = nb__threads_configured(), threads = g->threads >= 1 && g->threads <= full ? g->threads : full;
    nb__threads_for_pass(threads, false);
    const int nt = team_size(g, threads);
    return pass_end(nt > 1 ? team_pass(g, loss, nt) : backward_serial(g, loss));
}

void nb_graph_on_grad_ready(nb_graph *g, nb_grad_ready_fn fn, void *user) {
    if (g) g->grad_ready = fn, g->grad_ready_user = user;
}

int nb_graph_grad_order(nb_graph *g, nb_node *loss, nb_tensor **out, int max) {
    if (!g) return -1;
    if (!loss || loss->graph != g) {
        nb__fail(g, "grad order: loss is NULL or belongs to another graph");
        return -1;
    }
    mark_needs(g, loss);
    plan_ready(g, loss);
    int count = 0;
    for (int i = loss->id; i >= -1; i--)
        for (const nb_node *p = i >= 0 ? g->nodes[i]->ready : g->ready_last; p; p = p->ready_next, count++)
            if (count < max && out) out[count] = p->tensor;
    return count;
}

/* Counter {block, step, node id}, key {seed + high half of step}: a node's
 * stream in one pass. */
void nb__random4(const nb_graph *g, const nb_node *n, uint64_t block, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)g->step,
                             (uint32_t)n->id};
    const uint32_t key[2] = {(uint32_t)g->seed, (uint32_t)(g->seed >> 32) + (uint32_t)(g->step >> 32)};
    nb_philox4x32(ctr, key, out);
}

void nb__random_blocks(const nb_graph *g, const nb_node *n, uint64_t first, size_t count, uint32_t *out) {
    const uint32_t key[2] = {(uint32_t)g->seed, (uint32_t)(g->seed >> 32) + (uint32_t)(g->step >> 32)};
    nb__philox_blocks(key, (uint32_t)g->step, (uint32_t)n->id, first, count, out);
}
