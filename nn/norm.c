// norm.c: (being written)
