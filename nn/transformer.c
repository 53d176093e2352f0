// transformer.c: (being written)
