// linear.c: (being written)
