/* optim/optimizer.c — being written */
