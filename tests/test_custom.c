/* tests/test_custom.c — being written */
#include <criterion/criterion.h>
