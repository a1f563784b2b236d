/* tests/test_rng.c — being written */
#include <criterion/criterion.h>
