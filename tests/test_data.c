/* tests/test_data.c — being written */
#include <criterion/criterion.h>
