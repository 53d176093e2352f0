// attention.c: (being written)
