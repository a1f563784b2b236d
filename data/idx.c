/* data/idx.c — being written */
