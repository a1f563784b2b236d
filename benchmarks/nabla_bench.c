/* nabla-bench — every op of nabla, forward and backward, next to the
 * machine's limits measured in the same run. The harness is the library
 * libnabla-bench (harness.c, nabla/bench.h); this program is the harness
 * with no ops of a user's. --help lists the flags; README.md explains the
 * table.
 *
 * Programs written before the library included this file with
 * NABLA_BENCH_NO_MAIN defined and called nbb_main with their ops: that
 * still compiles, and links with -lnabla-bench (pkg-config nabla-bench). */
#include "nabla/bench.h"

#ifndef NABLA_BENCH_NO_MAIN
int main(int argc, char **argv) { return nbb_main(argc, argv, NULL, 0); }
#endif
