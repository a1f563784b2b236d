/* ops/dropout.c — inverted dropout and alpha dropout.
 *
 * Element i draws 16 random bits: half i % 2 (0: the low 16 bits) of word
 * (i / 2) % 4 of the Philox block i / 8 of the node's stream (nb__random4),
 * so a mask depends on the graph's seed, the step, the node and the element
 * only: never on the number of threads or on how the loop is split. An
 * element is kept when its 16 bits, read as u = h·2^-16, are >= rate (as
 * Keras keeps u >= rate), so it survives with probability
 * 1 - ceil(rate·2^16)/2^16: the rate is honoured to 2^-16 (1.5e-5), far
 * below what training can tell, and one Philox block serves 8 elements,
 * which halves the generator's work against 32 bits each.
 *
 * The mask (each element's multiplier, 0 where dropped) is kept in aux for
 * the backward pass. Whether
 * the last forward pass dropped anything is kept in the node's attributes:
 * in inference (unless the node is stochastic) and at rate 0 both ops are
 * the identity and pass gradients through unchanged. */
#include <math.h>
#include <string.h>

#include "graph/internal.h"
#include "ops/common.h"
#include "nabla/ops.h"

#define RATE(n) ((n)->attr.f[0])
#define ACTIVE(n) ((n)->attr.i[0]) /* the last forward pass drew a mask */

/* SELU's negative saturation value, -scale·alpha (Keras's alpha_p). */
#define ALPHA_P (-1.7580993408473766)

static size_t mask_aux(const nb_node *n) { return n->size; }

static void copy(float *restrict y, const float *restrict x, size_t size) {
    NB_PARALLEL_FOR(i, size, y[i] = x[i];);
}

static void add_into(float *restrict dx, const float *restrict dy, size_t size) {
    NB_PARALLEL_FOR(i, size, dx[i] += dy[i];);
}

static bool rate_ok(nb_graph *g, const char *op, float rate) {
    if (isfinite(rate) && rate >= 0.0f && rate < 1.0f) return true;
    nb__fail(g, "%s: rate %g outside [0,1)", op, (double)rate);
    return false;
}

/* Elements per batched draw: 128 Philox blocks, 2 KiB of words on the
 * stack, in L1 when the mask is applied. A multiple of 8 elements, so
 * every chunk starts on a block. */
#define CHUNK 1024

/* Both ops are the same masked affine map, in float as Keras computes it:
 * a kept element becomes mul·x + add, a dropped one becomes dropped.
 * Inverted dropout has mul = 1/(1-rate), add = dropped = 0 (TensorFlow's
 * x·scale); alpha dropout mul = a, add = b, dropped = a·alpha_p + b. The
 * mask in aux holds each element's multiplier (mul or 0), so the backward
 * pass is dx += mask·dy with no branch. */
typedef struct masked_map {
    float mul, add, dropped;
} masked_map;

/* u >= rate, for u = h·2^-16, is h >= ceil(rate·2^16): an integer test,
 * which vectorizes. 65536 (rate above 1 - 2^-16) drops everything. */
static int32_t keep_threshold(float rate) { return (int32_t)ceil((double)rate * 65536.0); }

/* Element k's 16 bits from the chunk's words: half k % 2 of word k / 2. */
static inline uint32_t half_of(const uint32_t *words, size_t k) {
    return (words[k / 2] >> (16 * (k % 2))) & 0xffffu;
}

// words, x: [m] -> y[k] = kept ? mul·x[k] + add : dropped, mask[k] = kept ? mul : 0
/* No fused multiply-add: GCC fuses the scalar tail of this loop and not its
 * vector body, and a tail's length depends on the batch, so an element would
 * round differently at another batch (and on another CPU). */
NB_KERNEL_CLONES __attribute__((optimize("fp-contract=off")))
static void apply_mask(size_t m, const uint32_t *restrict words, size_t skip, int32_t threshold, masked_map f,
                       const float *restrict x, float *restrict y, float *restrict mask) {
    /* Selects as bit masks, so the loop has no branch and vectorizes. */
    uint32_t mul_bits, dropped_bits;
    memcpy(&mul_bits, &f.mul, 4);
    memcpy(&dropped_bits, &f.dropped, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* half k % 2 of word k / 2 is the k-th 16-bit unit in memory: a plain
     * zero-extending load, where the shifts would cost a shuffle */
    typedef uint16_t __attribute__((may_alias)) u16_alias;
    const u16_alias *h = (const u16_alias *)words + skip;
#define HALF(k) ((uint32_t)h[k])
#else
#define HALF(k) half_of(words, (k) + skip)
#endif
    for (size_t k = 0; k < m; k++) {
        const uint32_t sel = 0u - (uint32_t)((int32_t)HALF(k) >= threshold);
        const float kept = f.mul * x[k] + f.add;
        uint32_t kept_bits;
        memcpy(&kept_bits, &kept, 4);
        const uint32_t y_bits = (kept_bits & sel) | (dropped_bits & ~sel), m_bits = mul_bits & sel;
        memcpy(&y[k], &y_bits, 4);
        memcpy(&mask[k], &m_bits, 4);
    }
#undef HALF
}

// the elements of chunks [lo, hi); element e's bits are half e of the node's stream
static void masked_chunks(const nb_graph *g, const nb_node *n, masked_map f, size_t lo, size_t hi,
                          float rate, const float *x, float *y, float *mask) {
    const size_t size = n->size;
    const int32_t threshold = keep_threshold(rate);
    const uint64_t off = nb__random_offset(g, n); /* a share of a global batch: its rows' place */
    uint32_t words[CHUNK / 2 + 4];
    for (size_t c = lo; c < hi; c++) {
        const size_t e0 = c * CHUNK, m = size - e0 < CHUNK ? size - e0 : CHUNK;
        const uint64_t first = off + e0;
        const size_t skip = (size_t)(first % 8);
        nb__random_blocks(g, n, first / 8, (skip + m + 7) / 8, words);
        apply_mask(m, words, skip, threshold, f, x + e0, y + e0, mask + e0);
    }
}

static nb_status masked_forward(nb_graph *g, nb_node *n, masked_map f) {
    const float *x = n->in[0]->value;
    float *y = n->value, *mask = n->aux;
    size_t size = n->size;
    float rate = RATE(n);
    ACTIVE(n) = rate > 0.0f && nb__random_active(g, n);
    if (!ACTIVE(n)) {
        copy(y, x, size);
        return NB_OK;
    }
    /* chunks: one batched Philox call each, then a flat loop that vectorizes;
     * split by chunks, so each thread's elements start on a block */
    const size_t chunks = (size + CHUNK - 1) / CHUNK;
    NB_PARALLEL_RANGE_IF(size >= NB_PAR_MIN, lo, hi, chunks, masked_chunks(g, n, f, lo, hi, rate, x, y, mask));
    return NB_OK;
}

/* A function over a range with restrict pointers: the same loop written
 * inside NB_PARALLEL_FOR lost them in the outlined region and ran 1.3-7x
 * slower on two threads than on one. */
NB_KERNEL_CLONES static void mask_grad_range(size_t lo, size_t hi, float *restrict dx, const float *restrict dy,
                                             const float *restrict mask) {
    for (size_t i = lo; i < hi; i++) dx[i] += mask[i] * dy[i];
}

static void masked_backward(nb_node *n) {
    float *restrict dx = n->in[0]->grad;
    if (!dx) return;
    const float *restrict dy = n->grad, *restrict mask = n->aux;
    size_t size = n->size;
    if (!ACTIVE(n)) {
        add_into(dx, dy, size);
        return;
    }
    NB_PARALLEL_RANGE(lo, hi, size, mask_grad_range(lo, hi, dx, dy, mask));
}

/* ---- inverted dropout ---- */

static masked_map dropout_map(const nb_node *n) {
    return (masked_map){.mul = (float)(1.0 / (1.0 - (double)RATE(n))), .add = 0.0f, .dropped = 0.0f};
}

static nb_status dropout_forward(nb_graph *g, nb_node *n) { return masked_forward(g, n, dropout_map(n)); }

static void dropout_backward(nb_graph *g, nb_node *n) {
    (void)g;
    masked_backward(n);
}

const nb_op nb_op_dropout = {.name = "dropout", .infer = nb__infer_like_input, .aux = mask_aux,
                             .forward = dropout_forward, .backward = dropout_backward,
                             .random = true};

nb_node *nb_dropout(nb_graph *g, nb_node *x, float rate) {
    if (!g || g->status != NB_OK) return NULL;
    if (!rate_ok(g, "dropout", rate)) return NULL;
    nb_attr attr = {.f = {rate}};
    return nb__op_node(g, &nb_op_dropout, 1, (nb_node *[]){x}, &attr);
}

/* ---- alpha dropout (Klambauer et al. 2017; Keras AlphaDropout) ---- */

/* The affine correction that keeps zero mean and unit variance:
 * a = ((1-rate)(1 + rate·alpha_p²))^-1/2, b = -a·alpha_p·rate; a dropped
 * element is a·alpha_p + b. */
static masked_map alpha_map(const nb_node *n) {
    double r = RATE(n);
    double a = 1.0 / sqrt((1.0 - r) * (1.0 + r * ALPHA_P * ALPHA_P)), b = -a * ALPHA_P * r;
    return (masked_map){.mul = (float)a, .add = (float)b, .dropped = (float)(a * ALPHA_P + b)};
}

static nb_status alpha_dropout_forward(nb_graph *g, nb_node *n) { return masked_forward(g, n, alpha_map(n)); }

static void alpha_dropout_backward(nb_graph *g, nb_node *n) {
    (void)g;
    masked_backward(n);
}

const nb_op nb_op_alpha_dropout = {.name = "alpha_dropout", .infer = nb__infer_like_input,
                                   .aux = mask_aux, .forward = alpha_dropout_forward,
                                   .backward = alpha_dropout_backward, .random = true};

nb_node *nb_alpha_dropout(nb_graph *g, nb_node *x, float rate) {
    if (!g || g->status != NB_OK) return NULL;
    if (!rate_ok(g, "alpha_dropout", rate)) return NULL;
    nb_attr attr = {.f = {rate}};
    return nb__op_node(g, &nb_op_alpha_dropout, 1, (nb_node *[]){x}, &attr);
}
