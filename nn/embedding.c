// embedding.c: (being written)
