/* data/dataset.c — being written */
