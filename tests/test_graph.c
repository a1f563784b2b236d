/* tests/test_graph.c — being written */
#include <criterion/criterion.h>
