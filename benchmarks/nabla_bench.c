/* nabla-bench — every op of nabla, forward and backward, next to the
 * machine's limits measured in the same run. The harness is the library
 * libnabla-bench (harness.c, nabla/bench.h); this program is the harness
 * with no ops of a user's. --help lists the flags; README.md explains the
 * table. */
#include "nabla/bench.h"

int main(int argc, char **argv) { return nbb_main(argc, argv, NULL, 0); }
