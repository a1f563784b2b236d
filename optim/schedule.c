/* optim/schedule.c — being written */
