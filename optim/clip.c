/* optim/clip.c — being written */
