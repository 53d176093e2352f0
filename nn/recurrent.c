// recurrent.c: (being written)
