/* Philox4x32-10 against the known-answer vectors of Random123, and the
 * stream built on it. */
#include <criterion/criterion.h>
#include <math.h>

#include "nabla/rng.h"

static void check_kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4]) {
    uint32_t out[4];
    nb_philox4x32(ctr, key, out);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(out[i], want[i], "word %d: got 0x%08x, want 0x%08x", i, out[i], want[i]);
}

Test(rng, philox_matches_random123_zero_vector) {
    check_kat((uint32_t[]){0, 0, 0, 0}, (uint32_t[]){0, 0},
              (uint32_t[]){0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
}

Test(rng, philox_matches_random123_ones_vector) {
    check_kat((uint32_t[]){0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
              (uint32_t[]){0xffffffff, 0xffffffff},
              (uint32_t[]){0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
}

Test(rng, philox_matches_random123_pi_vector) {
    check_kat((uint32_t[]){0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
              (uint32_t[]){0xa4093822, 0x299f31d0},
              (uint32_t[]){0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

Test(rng, same_seed_same_stream_repeats) {
    nb_rng a, b;
    nb_rng_seed(&a, 123, 4);
    nb_rng_seed(&b, 123, 4);
    for (int i = 0; i < 1000; i++) cr_assert_eq(nb_rng_u32(&a), nb_rng_u32(&b));
}

Test(rng, different_streams_differ) {
    nb_rng a, b;
    nb_rng_seed(&a, 123, 4);
    nb_rng_seed(&b, 123, 5);
    int same = 0;
    for (int i = 0; i < 1000; i++) same += nb_rng_u32(&a) == nb_rng_u32(&b);
    cr_assert_lt(same, 3);
}

Test(rng, uniform_and_normal_have_the_right_moments) {
    nb_rng r;
    nb_rng_seed(&r, 7, 0);
    const int n = 200000;
    double su = 0, su2 = 0, sn = 0, sn2 = 0;
    for (int i = 0; i < n; i++) {
        double u = nb_rng_uniform(&r), z = nb_rng_normal(&r);
        cr_assert(u >= 0.0 && u < 1.0);
        cr_assert(isfinite(z));
        su += u, su2 += u * u, sn += z, sn2 += z * z;
    }
    double mu = su / n, vu = su2 / n - mu * mu, mn = sn / n, vn = sn2 / n - mn * mn;
    cr_assert(fabs(mu - 0.5) < 0.005, "uniform mean %g", mu);
    cr_assert(fabs(vu - 1.0 / 12) < 0.002, "uniform variance %g", vu);
    cr_assert(fabs(mn) < 0.01, "normal mean %g", mn);
    cr_assert(fabs(vn - 1.0) < 0.02, "normal variance %g", vn);
}

Test(rng, below_is_in_range_and_covers_it) {
    nb_rng r;
    nb_rng_seed(&r, 9, 1);
    int seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint32_t v = nb_rng_below(&r, 10);
        cr_assert_lt(v, 10u);
        seen[v]++;
    }
    for (int k = 0; k < 10; k++) cr_assert(seen[k] > 800 && seen[k] < 1200, "value %d seen %d times", k, seen[k]);
    cr_assert_eq(nb_rng_below(&r, 1), 0u);
}

#include "graph/internal.h"

Test(rng, batched_philox_gives_the_same_words_as_one_block_at_a_time) {
    /* any count (partial lanes), a start near a 2^32 carry, any key */
    const uint32_t key[2] = {0xdeadbeef, 0x12345678};
    const uint64_t first = 0xfffffff0ull;
    uint32_t out[4 * 37];
    nb__philox_blocks(key, 0x9abc, 0x77, first, 37, out);
    for (uint64_t b = 0; b < 37; b++) {
        const uint32_t ctr[4] = {(uint32_t)(first + b), (uint32_t)((first + b) >> 32), 0x9abc, 0x77};
        uint32_t ref[4];
        nb_philox4x32(ctr, key, ref);
        for (int j = 0; j < 4; j++) cr_assert_eq(out[4 * b + j], ref[j], "block %llu word %d", (unsigned long long)b, j);
    }
}

#include "graph/rng_internal.h"

/* Every instruction-set path the CPU has gives Philox4x32-10's words for
 * any count (whole vector groups, a partial last group, none) and a start
 * whose low counter word wraps inside a group. */
Test(rng, every_batched_philox_path_matches_the_reference) {
    const uint32_t key[2] = {0x01234567, 0x89abcdef};
    const uint64_t starts[] = {0, 5, 0xffffffe3ull, 0x1ffffffffull};
    enum { MAX = 77 };
    uint32_t out[4 * MAX + 4];
    int paths = 0;
    for (int isa = NB_PHILOX_PORTABLE; isa <= NB_PHILOX_AVX512; isa++)
        for (size_t s = 0; s < sizeof starts / sizeof *starts; s++)
            for (size_t count = 0; count <= MAX; count += count < 40 ? 1 : 9) {
                out[4 * count] = 0xfeedf00d; /* nothing written past the end */
                if (!nb__philox_blocks_isa(isa, key, 0x5555, 0xa0a0a0a0, starts[s], count, out)) continue;
                paths += s == 0 && count == 0;
                cr_assert_eq(out[4 * count], 0xfeedf00du, "isa %d count %zu wrote past the end", isa, count);
                for (size_t b = 0; b < count; b++) {
                    const uint64_t blk = starts[s] + b;
                    const uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), 0x5555, 0xa0a0a0a0};
                    uint32_t ref[4];
                    nb_philox4x32(ctr, key, ref);
                    for (int j = 0; j < 4; j++)
                        cr_assert_eq(out[4 * b + j], ref[j], "isa %d start %llx count %zu block %zu word %d", isa,
                                     (unsigned long long)starts[s], count, b, j);
                }
            }
    cr_assert(paths >= 1, "the portable path always runs");
    cr_log_info("%d Philox paths checked", paths);
}
