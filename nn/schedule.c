// schedule.c: (being written)
