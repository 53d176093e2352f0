// gru.c: (being written)
