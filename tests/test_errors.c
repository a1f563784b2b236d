/* tests/test_errors.c — being written */
#include <criterion/criterion.h>
