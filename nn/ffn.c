// ffn.c: (being written)
