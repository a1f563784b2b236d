/* tests/test_threads.c — being written */
#include <criterion/criterion.h>
