/* data/internal.h — what the loaders of data/ share. */
#ifndef NABLA_DATA_INTERNAL_H
#define NABLA_DATA_INTERNAL_H

/* Opens path for reading, refusing anything but a regular file: a FIFO
 * would block the open or the reads forever, and a device such as
 * /dev/zero never ends. The open itself does not block (O_NONBLOCK, then
 * cleared). what names the expected content in messages ("an IDX images
 * file", "a CSV file"). Returns the descriptor (close-on-exec), or -1 with
 * the error set naming the file. */
int nb__data_open(const char *path, const char *what);

#endif
