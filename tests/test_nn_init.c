/* tests/test_nn_init.c — being written */
#include <criterion/criterion.h>
