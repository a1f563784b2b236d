/* tests/test_alloc.c — being written */
#include <criterion/criterion.h>
