/* tests/alloc_count.h — counts heap allocations made by the whole process
 * (nabla, BLIS, libgomp), to check that a replayed step allocates nothing. */
#ifndef NABLA_TESTS_ALLOC_COUNT_H
#define NABLA_TESTS_ALLOC_COUNT_H

#include <stdbool.h>

/* Allocations (malloc, calloc, realloc, aligned forms) since the process began. */
unsigned long alloc_count(void);
/* False if this build cannot count (then the test must say so and fail). */
bool alloc_count_works(void);

#endif
