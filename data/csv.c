/* data/csv.c — being written */
