// train: the one trainer of the zoo.
//   train CFG [section.key=value ...] [--json]
//   train --resume RUN_DIR [section.key=value ...] [--json]
// run.c reads the command line and the configuration, the task (task_lm.c for language
// models, task_pairs.c for translation) the data and the model, loop.c trains; tz_run_main
// (run.c) puts them together, so the tests run the trainer as this does.
#include "run.h"

int main(int argc, char **argv) { return tz_run_main(argc, argv, NULL); }
