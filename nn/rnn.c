// rnn.c: (being written)
