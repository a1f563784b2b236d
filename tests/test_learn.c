/* tests/test_learn.c — being written */
#include <criterion/criterion.h>
