// optim.c: (being written)
