// position.c: (being written)
