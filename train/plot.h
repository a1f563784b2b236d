/* train/plot.h — gnuplot drawing shared by train/'s plots (history.c holds
 * it). Internal. */
#ifndef NABLA_TRAIN_PLOT_H
#define NABLA_TRAIN_PLOT_H

#include <stddef.h>

#include "nabla/graph.h"

/* The gnuplot terminal line for path's extension (.png or .svg), or NULL. */
const char *nb__plot_terminal(const char *path);
/* Runs gnuplot (from $PATH, no shell) on script, which draws to its
 * standard output, and writes the picture into path atomically. Takes
 * script (frees it). Errors name `who` and path. */
nb_status nb__plot_draw(const char *who, const char *path, char *script, size_t len);

#endif
