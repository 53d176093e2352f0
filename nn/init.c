// init.c: (being written)
