// lstm.c: (being written)
