// The trainer and sampler as a user runs them: a tiny run with --json, resume, Ctrl-C, and the
// one-line errors for bad input (exit status != 0, nothing already saved lost).
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

// A temporary folder with a tiny corpus and a cfg for `type`.
static void setup(void) {
    strcpy(dir, "/tmp/tapezoo-cli-XXXXXX");
    cr_assert(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/tiny.txt", dir);
    FILE *f = fopen(path, "w");
    // varied enough that a batch taken from the wrong place shows in the loss
    static const char *words[] = {"cat", "dog", "sat", "ran", "on", "the", "a", "mat", "tree", "king", "sang", "to"};
    unsigned x = 12345;
    for (int i = 0; i < 300; i++) {
        for (int w = 0; w < 5; w++) {
            x = x * 1103515245u + 12345u;
            fprintf(f, "%s%s", w ? " " : "", words[(x >> 16) % 12]);
        }
        fputs(".\n", f);
    }
    fclose(f);
}
static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(cli, .init = setup, .fini = teardown, .timeout = 120);

static void write_cfg(const char *name, const char *text) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static const char *gru_cfg = "[model]\ntype = gru\nembed = 8\nhidden = 16\n[data]\npath = tiny.txt\n"
                             "[train]\nsteps = 30\nbatch = 4\nblock = 16\neval_every = 10\nlog_every = 5\nclip = 5\n";

// Runs the trainer in dir after the shell words `env` (assignments or commands, or ""); returns
// its exit status and what it wrote (stdout in *out, stderr in *err).
static int run_env(const char *env, const char *args, char **out, char **err) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s %s >out.txt 2>err.txt", dir, env, TZ_TRAIN_EXE, args);
    int st = system(cmd);
    static char obuf[1 << 16], ebuf[1 << 16];
    char path[128];
    FILE *f;
    snprintf(path, sizeof path, "%s/out.txt", dir);
    f = fopen(path, "r");
    obuf[fread(obuf, 1, sizeof obuf - 1, f)] = 0;
    fclose(f);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    f = fopen(path, "r");
    ebuf[fread(ebuf, 1, sizeof ebuf - 1, f)] = 0;
    fclose(f);
    if (out) *out = obuf;
    if (err) *err = ebuf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
static int run(const char *args, char **out, char **err) { return run_env("", args, out, err); }

// Starts the trainer with args in dir (output in o.txt), after the shell words `env` (variable
// assignments, or ""). Returns its pid.
static pid_t start(const char *env, const char *args) {
    // These tests time a signal against the trainer's progress; under valgrind (tests/valgrind.sh)
    // the trainer runs ~50x slower and the timing means nothing. They run in the plain and ASan suites.
    if (getenv("TZ_UNDER_VALGRIND")) cr_skip_test("timed signals are not tested under valgrind");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && %s exec %s %s >o.txt 2>&1", dir, env, TZ_TRAIN_EXE, args);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

// Under valgrind (~50x slower) a test whose point is that two runs give the same numbers, over
// code paths the other tests here already run under valgrind, skips: it adds minutes and no
// memory check. It runs in the plain and ASan suites.
static void same_paths_under_valgrind(void) {
    if (getenv("TZ_UNDER_VALGRIND")) cr_skip_test("numbers only, paths checked by the other tests under valgrind");
}

// Waits for pid: its exit status, or -(the signal) that killed it.
static int finish(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

// Waits until the file `name` of dir exists (at most 60 s).
static void wait_for(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    for (int i = 0; i < 600 && access(path, F_OK); i++) usleep(100000);
    cr_assert(!access(path, F_OK), "%s never appeared", name);
}

// The file `name` of dir (its last 64 KB), in a static buffer.
static const char *slurp(const char *name) {
    static char text[1 << 16];
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    cr_assert(f, "no %s", name);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof text - 1 ? size - (long)sizeof text + 1 : 0, SEEK_SET); // messages are at the end
    text[fread(text, 1, sizeof text - 1, f)] = 0;
    fclose(f);
    return text;
}

// Runs a shell command in dir; returns its exit status.
static int sh(const char *fmt, ...) {
    char cmd[1024], line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "cd %s && { %s ; }", dir, cmd);
    int st = system(line);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Starts the trainer with args in dir (output in o.txt), sends sig after `seconds` and expects
// it to save and exit with 128 + sig.
static void interrupt_after(const char *args, int seconds, int sig) {
    pid_t pid = start("", args);
    sleep(seconds);
    kill(pid, sig);
    int st = finish(pid);
    cr_assert_eq(st, 128 + sig, "exit status %d after signal %d:\n%s", st, sig, slurp("o.txt"));
}

static double field(const char *json, const char *event, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "{\"event\":\"%s\"", event);
    const char *line = strstr(json, pat);
    cr_assert(line, "no %s event in:\n%s", event, json);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *v = strstr(line, pat);
    cr_assert(v && (!strchr(line, '\n') || v < strchr(line, '\n')), "no %s in the %s event", key, event);
    return atof(v + strlen(pat));
}

// Runs the trainer with printf-formatted args, which must include --json and succeed; returns
// the final validation loss of its summary.
static double final_val_loss(const char *fmt, ...) {
    char args[512], *out, *err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    cr_assert_eq(run(args, &out, &err), 0, "train %s:\n%s", args, err);
    return field(out, "summary", "final_val_loss");
}

Test(cli, json_run_resume_and_sample) {
    write_cfg("gru.cfg", gru_cfg);
    char *out, *err;
    cr_assert_eq(run("gru.cfg --json train.steps=20 train.out_dir=run", &out, &err), 0, "%s", err);
    for (const char *p = out; *p; p = strchr(p, '\n') + 1) // nothing but JSON lines on stdout
        cr_assert(*p == '{', "a non-JSON line on stdout: %.60s", p);
    const char *keys[] = {"tokens_per_s", "ms_per_step", "final_train_loss", "final_val_loss", "wall_s", "peak_rss_mb"};
    for (int i = 0; i < 6; i++) cr_assert(field(out, "summary", keys[i]) > 0, "%s", keys[i]);
    cr_assert_eq(field(out, "summary", "steps"), 20);
    // resume to 30 steps == 30 steps straight
    cr_assert_eq(run("--resume run --json train.steps=30", &out, &err), 0, "%s", err);
    double resumed = field(out, "summary", "final_val_loss");
    cr_assert_eq(field(out, "summary", "steps"), 30);
    double straight = final_val_loss("gru.cfg --json train.out_dir=straight"); // once: the assertion evaluates twice
    cr_assert_float_eq(resumed, straight, 1e-5, "resuming continues exactly");
    // the log has the header and one row per log step of both runs
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(wc -l < %s/run/log.csv) -eq 7", dir);
    cr_assert_eq(system(cmd), 0, "log.csv: header + 6 rows");
    // sampling from the run directory
    char args[256];
    snprintf(args, sizeof args, "--tokens 20 --greedy --prompt 'the '");
    char sample_cmd[512];
    snprintf(sample_cmd, sizeof sample_cmd, "cd %s && %s run %s > s.txt", dir, TZ_SAMPLE_EXE, args);
    cr_assert_eq(system(sample_cmd), 0);
}

// train.steps = 0 validates the initial model and saves it as step 0 (what tools/bench/run hands
// to the PyTorch reference as its start): training on from it is the run that starts afresh.
Test(cli, zero_steps_saves_the_initial_model) {
    write_cfg("gru.cfg", gru_cfg);
    char *out, *err;
    cr_assert_eq(run("gru.cfg --json train.steps=0 train.out_dir=init", &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "\"final_train_loss\":null,"), "no training step, no train loss: %s", out);
    double init_val = field(out, "summary", "final_val_loss");
    cr_assert(init_val > 2 && init_val < 5, "the initial model's val loss %g: about ln(vocabulary)", init_val);
    cr_assert_eq(field(out, "summary", "best_step"), 0);
    cr_assert_eq(sh("test -s init/last.safetensors && test -s init/best.safetensors"), 0, "no checkpoints of step 0");
    // Logged like any validation: a val event of step 0, and log.csv's row 0 with no train loss.
    cr_assert_eq(field(out, "val", "step"), 0);
    cr_assert_eq(field(out, "val", "val_loss"), init_val);
    char row0[64];
    snprintf(row0, sizeof row0, "\n0,,%.6f,", init_val);
    cr_assert(strstr(slurp("init/log.csv"), row0), "no row '%s' in init/log.csv:\n%s", row0 + 1, slurp("init/log.csv"));
    double resumed = final_val_loss("--resume init --json train.steps=20");
    const char *log = slurp("init/log.csv");
    cr_assert(strstr(log, row0) && strstr(log, "\n20,"), "the resumed run's log keeps row 0 and adds step 20:\n%s",
              log);
    double straight = final_val_loss("gru.cfg --json train.steps=20 train.out_dir=straight");
    cr_assert(resumed == straight, "from the step-0 checkpoint %.9f, afresh %.9f", resumed, straight);
}

// --profile: a per-op table on stderr after the run (stdout stays JSON), the model's own op in it.
Test(cli, profile_names_the_ops) {
    write_cfg("gru.cfg", gru_cfg);
    char *out, *err;
    cr_assert_eq(run("gru.cfg --json --profile train.out_dir=run", &out, &err), 0, "%s", err);
    for (const char *p = out; *p; p = strchr(p, '\n') + 1) cr_assert(*p == '{', "a non-JSON line on stdout: %.60s", p);
    const char *table = strstr(err, "# profile: ms per step over 10 steps");
    cr_assert(table, "no profile table (30 steps - 20 warm-up) in:\n%s", err);
    double fwd = 0, bwd = 0;
    const char *row = strstr(table, "\ngru_seq ");
    cr_assert(row && sscanf(row, " gru_seq %*f %lf %lf", &fwd, &bwd) == 2, "no gru_seq row in:\n%s", table);
    cr_assert(fwd > 0 && bwd > 0, "gru_seq forward %g backward %g ms", fwd, bwd);
    cr_assert(strstr(table, "\nall "), "no total row");
}

// A Ctrl-C checkpoint holds the recurrent state carried into the next batch and the dropout
// RNG: resuming from it ends exactly where an uninterrupted run of the same length ends.
Test(cli, ctrl_c_resume_is_exact) {
    write_cfg("gru.cfg", gru_cfg);
    const char *same = "model.dropout=0.2 train.eval_every=1000000 train.log_every=1000000";
    char args[256];
    snprintf(args, sizeof args, "gru.cfg --json %s train.steps=1000000 train.out_dir=run", same);
    interrupt_after(args, 1, SIGINT);
    const char *text = slurp("o.txt");
    const char *at = strstr(text, "interrupted (SIGINT) at step ");
    long stopped = at ? atol(at + strlen("interrupted (SIGINT) at step ")) : 0;
    cr_assert(stopped > 0, "no 'interrupted (SIGINT) at step' in:\n%s", text);
    double resumed = final_val_loss("--resume run --json train.steps=%ld", stopped + 9);
    double straight = final_val_loss("gru.cfg --json %s train.steps=%ld train.out_dir=straight", same, stopped + 9);
    cr_assert(resumed == straight, "stopped at %ld: resumed %.9f, uninterrupted %.9f", stopped, resumed, straight);
}

// Samples (every 5 steps without --json) draw from their own RNG and leave the carried state as
// it was: the run trains exactly as the same run with --json, which never samples.
Test(cli, sampling_does_not_change_training) {
    write_cfg("gru.cfg", gru_cfg);
    char *out, *err;
    const char *same = "model.dropout=0.2 train.sample_every=5 sample.tokens=20";
    char args[256];
    snprintf(args, sizeof args, "gru.cfg %s train.out_dir=a", same);
    cr_assert_eq(run(args, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "--- sample at step 5"), "no sample in:\n%.400s", out);
    snprintf(args, sizeof args, "gru.cfg --json %s train.out_dir=b", same);
    cr_assert_eq(run(args, &out, &err), 0, "%s", err);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "cd %s && cut -d, -f1-3 a/log.csv > a.txt && cut -d, -f1-3 b/log.csv > b.txt && cmp -s a.txt b.txt", dir);
    cr_assert_eq(system(cmd), 0, "losses differ between the run that samples and the one that does not");
}

// 64 streams of the tiny text wrap every few steps: resuming must land on the same stream position.
Test(cli, resume_across_epochs_is_exact) {
    same_paths_under_valgrind(); // resume: json_run_resume_and_sample
    write_cfg("gru.cfg", gru_cfg);
    const char *common = "train.batch=64 train.eval_every=5";
    final_val_loss("gru.cfg --json %s train.steps=10 train.out_dir=run", common);
    double resumed = final_val_loss("--resume run --json train.steps=23");
    double straight = final_val_loss("gru.cfg --json %s train.steps=23 train.out_dir=straight", common);
    cr_assert_float_eq(resumed, straight, 1e-6, "resuming across stream wraps");
}

Test(cli, bad_input_is_one_line_and_nonzero) {
    char *err;
    write_cfg("typo.cfg", "[model]\ntype = gru\nhiden = 3\n[data]\npath = tiny.txt\n");
    cr_assert_eq(run("typo.cfg", NULL, &err), 1);
    cr_assert_str_eq(err, "tapezoo: typo.cfg:3: unknown key 'hiden' in [model] (did you mean 'hidden'?)\n");
    cr_assert_eq(run("missing.cfg", NULL, &err), 1);
    cr_assert(strstr(err, "missing.cfg: cannot open the cfg file"), "%s", err);
    write_cfg("nodata.cfg", "[model]\ntype = gru\n[data]\npath = data/tinyshakespeare.txt\n");
    cr_assert_eq(run("nodata.cfg", NULL, &err), 1);
    cr_assert(strstr(err, "HINT: fetch it with: data/fetch tinyshakespeare"), "%s", err);
    write_cfg("empty.cfg", "[model]\ntype = gru\n[data]\npath = empty.txt\n");
    write_cfg("empty.txt", "");
    cr_assert_eq(run("empty.cfg", NULL, &err), 1);
    cr_assert(strstr(err, "is empty"), "%s", err);
    cr_assert_eq(run("--resume nowhere", NULL, &err), 1);
    cr_assert(strstr(err, "nowhere/last.safetensors: cannot open"), "%s", err);
}

// SGD at lr 1e30 makes the weights infinite: the run stops at the step whose loss is not finite
// with exit 3, naming the parameter that went bad; the checkpoint of step 10 stays untouched.
Test(cli, nan_stops_without_losing_the_checkpoint) {
    write_cfg("gru.cfg", gru_cfg);
    char *err;
    cr_assert_eq(run("gru.cfg train.steps=10 train.out_dir=run optim.name=sgd optim.lr=0.1", NULL, &err), 0, "%s", err);
    cr_assert_eq(sh("cp run/last.safetensors saved.safetensors"), 0);
    cr_assert_eq(run("--resume run train.steps=30 optim.lr=1e30 train.clip=0", NULL, &err), 3, "%s", err); // overflows
    cr_assert(strstr(err, "train: step 1") && strstr(err, ": the loss is ") &&
                  strstr(err, "(weight 'embed.weight' is "),
              "%s", err);
    cr_assert(strstr(err, "The last good checkpoint is run/last.safetensors (step 10)"), "%s", err);
    cr_assert_eq(sh("cmp -s run/last.safetensors saved.safetensors"), 0, "the good checkpoint is untouched");
    // A checkpoint of a different shape: resuming with another width names the tensor.
    cr_assert_eq(run("--resume run model.hidden=8", NULL, &err), 1);
    cr_assert(strstr(err, "tensor 'rnn.weight_ih_l0' has shape [48,8], the model wants [24,8]"), "%s", err);
    cr_assert_eq(run("--resume run optim.name=adam", NULL, &err), 1);
    cr_assert(strstr(err, "saved with optimiser 'sgd', the cfg asks for 'adam'"), "%s", err);
}

// Ctrl-C and SIGTERM save a checkpoint and exit with 130 and 143 (not 0: scripts must see that
// the run did not finish); the --json summary says so.
Test(cli, signals_save_and_exit_with_their_codes) {
    write_cfg("gru.cfg", gru_cfg);
    interrupt_after("gru.cfg --json train.steps=1000000 train.eval_every=1000000 train.out_dir=run", 2, SIGINT);
    cr_assert(strstr(slurp("o.txt"), "\"status\":130,\"stop\":\"interrupted\""), "%s", slurp("o.txt"));
    cr_assert_eq(sh("test -s run/last.safetensors"), 0);
    interrupt_after("gru.cfg --json train.steps=1000000 train.eval_every=1000000 train.out_dir=term", 2, SIGTERM);
    cr_assert(strstr(slurp("o.txt"), "interrupted (SIGTERM) at step "), "%s", slurp("o.txt"));
    cr_assert(strstr(slurp("o.txt"), "\"status\":143,\"stop\":\"interrupted\""), "%s", slurp("o.txt"));
    cr_assert_eq(sh("test -s term/last.safetensors"), 0, "SIGTERM saved a checkpoint");
    char *err;
    cr_assert_eq(run("--resume term train.steps=1", NULL, &err), 0, "the SIGTERM checkpoint resumes: %s", err);
}

// The slow_io library makes each checkpoint's rename sleep: a second Ctrl-C while the Ctrl-C
// checkpoint is being written neither cuts it short nor leaves a temporary file.
static const char *slow = "LD_PRELOAD=" TZ_SLOW_IO
                          " ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 TZ_SLOW_RENAME=3 TZ_SLOW_MARK=saving";

Test(cli, second_ctrl_c_during_the_save_does_not_cut_it) {
    write_cfg("gru.cfg", gru_cfg);
    pid_t pid = start(slow, "gru.cfg train.steps=1000000 train.eval_every=1000000 train.out_dir=run");
    sleep(1);
    kill(pid, SIGINT);
    wait_for("saving"); // inside the save
    kill(pid, SIGINT);
    int st = finish(pid);
    cr_assert_eq(st, 130, "exit status %d:\n%s", st, slurp("o.txt"));
    const char *at = strstr(slurp("o.txt"), "interrupted (SIGINT) at step ");
    cr_assert(at, "%s", slurp("o.txt"));
    long stopped = atol(at + strlen("interrupted (SIGINT) at step "));
    cr_assert_eq(sh("test ! -e run/last.safetensors.tmp"), 0, "a temporary file was left");
    char *out, *err;
    cr_assert_eq(run("--resume run --json train.steps=1", &out, &err), 0, "%s", err);
    cr_assert_eq(field(out, "summary", "steps"), stopped, "the checkpoint is the one of the interrupted step");
}

// kill -9 in the middle of writing a checkpoint: the previous one stays whole and loadable.
Test(cli, kill_during_a_checkpoint_write_keeps_the_previous_one) {
    write_cfg("gru.cfg", gru_cfg);
    char *out, *err;
    cr_assert_eq(run("gru.cfg --json train.steps=10 train.out_dir=run", &out, &err), 0, "%s", err);
    cr_assert_eq(sh("cp run/last.safetensors before.safetensors"), 0);
    pid_t pid = start(slow, "--resume run train.steps=20");
    wait_for("saving"); // step 20's checkpoint is written, not yet in place
    kill(pid, SIGKILL);
    cr_assert_eq(finish(pid), -SIGKILL);
    cr_assert_eq(sh("cmp -s before.safetensors run/last.safetensors"), 0, "the previous checkpoint changed");
    cr_assert_eq(run("--resume run --json train.steps=20", &out, &err), 0, "%s", err);
    cr_assert_eq(field(out, "summary", "steps"), 20);
    // resumed from step 10 after the kill: log.csv has each step once
    cr_assert_eq(sh("test \"$(cut -d, -f1 run/log.csv | tr '\\n' ' ')\" = 'step 5 10 15 20 '"), 0, "log.csv:\n%s",
                 slurp("run/log.csv"));
}

// A run killed after logging steps past its checkpoint: resuming cuts log.csv back to the
// checkpoint's step (else those steps appear twice), including a row cut short by the kill.
Test(cli, resume_cuts_the_log_back_to_the_checkpoint) {
    write_cfg("gru.cfg", gru_cfg);
    char *err;
    cr_assert_eq(run("gru.cfg train.steps=10 train.out_dir=run", NULL, &err), 0, "%s", err);
    cr_assert_eq(sh("printf '15,2.5,,1e-3,1.0,100.0,1.00\\n20,2.4,2.4,1e-3,1.0,100.0,2.00\\n25,2.' >> run/log.csv"), 0);
    cr_assert_eq(run("--resume run train.steps=20", NULL, &err), 0, "%s", err);
    cr_assert_eq(sh("test \"$(cut -d, -f1 run/log.csv | tr '\\n' ' ')\" = 'step 5 10 15 20 '"), 0, "log.csv:\n%s",
                 slurp("run/log.csv"));
}

// The step that makes the weights infinite is a validation step: nothing is saved (a checkpoint
// of infinite weights would be named as the last good one).
Test(cli, a_nonfinite_validation_step_saves_nothing) {
    write_cfg("gru.cfg", gru_cfg);
    char *err;
    cr_assert_eq(run("gru.cfg train.out_dir=run optim.lr=1e300 train.eval_every=1", NULL, &err), 3, "%s", err);
    cr_assert(strstr(err, "train: step 1: weight '"), "%s", err);
    cr_assert(strstr(err, "No checkpoint was written"), "%s", err);
    cr_assert_eq(sh("test ! -e run/last.safetensors && test ! -e run/best.safetensors"), 0,
                 "a non-finite checkpoint was written");
}

// A finite but diverged run (loss ~1e31) stops with exit 3 and is never saved as best.
Test(cli, a_diverged_run_stops_and_is_not_saved) {
    write_cfg("gru.cfg", gru_cfg);
    char *out, *err;
    cr_assert_eq(run("gru.cfg train.steps=10 train.out_dir=run", NULL, &err), 0, "%s", err);
    cr_assert_eq(sh("cp run/best.safetensors saved.safetensors"), 0);
    cr_assert_eq(run("--resume run --json train.steps=40 optim.lr=1e30", &out, &err), 3, "%s", err);
    cr_assert(strstr(err, "diverged"), "%s", err);
    cr_assert(strstr(out, "\"status\":3,\"stop\":\"numbers\""), "%s", out);
    cr_assert_eq(sh("cmp -s run/best.safetensors saved.safetensors"), 0, "a diverged state was saved as best");
}

// train.on_nonfinite = skip: a step whose loss is NaN (made so by the test hook) is skipped and
// the run finishes; with the default (stop) the same run stops at that step.
Test(cli, on_nonfinite_skip_skips_the_step) {
    write_cfg("gru.cfg", gru_cfg);
    char *out, *err;
    cr_assert_eq(run_env("TZ_TEST_NAN_AT=7", "gru.cfg --json train.out_dir=stop", &out, &err), 3, "%s", err);
    cr_assert(strstr(err, "train: step 7: the loss is nan"), "%s", err);
    cr_assert_eq(run_env("TZ_TEST_NAN_AT=7", "gru.cfg --json train.out_dir=skip train.on_nonfinite=skip", &out, &err),
                 0, "%s", err);
    cr_assert(strstr(err, "train: step 7: the loss is nan") && strstr(err, "step skipped"), "%s", err);
    cr_assert_eq(field(out, "summary", "skipped_steps"), 1);
    cr_assert_eq(field(out, "summary", "steps"), 30);
    cr_assert_eq(run("gru.cfg train.out_dir=x train.on_nonfinite=maybe", NULL, &err), 1);
    cr_assert(strstr(err, "on_nonfinite = 'maybe' (want stop or skip)"), "%s", err);
}

// A new run in a directory that holds a run is refused (its log would be truncated and an early
// failure would name the old checkpoint as the new run's); --force replaces it. A resumed run
// cannot be moved with train.out_dir; an out_dir that is a file is named.
Test(cli, an_existing_run_is_not_replaced_silently) {
    write_cfg("gru.cfg", gru_cfg);
    char *err;
    cr_assert_eq(run("gru.cfg train.steps=10 train.out_dir=run", NULL, &err), 0, "%s", err);
    cr_assert_eq(sh("cp run/log.csv saved.csv"), 0);
    cr_assert_eq(run("gru.cfg train.steps=5 train.out_dir=run", NULL, &err), 1);
    cr_assert(strstr(err, "run already holds a run") && strstr(err, "--resume run") && strstr(err, "--force"), "%s",
              err);
    cr_assert_eq(sh("cmp -s run/log.csv saved.csv"), 0, "the old run's log was touched");
    cr_assert_eq(run("gru.cfg train.steps=5 train.out_dir=run --force", NULL, &err), 0, "%s", err);
    cr_assert_eq(sh("test \"$(cut -d, -f1 run/log.csv | tr '\\n' ' ')\" = 'step 5 '"), 0, "%s", slurp("run/log.csv"));
    cr_assert_eq(run("--resume run train.out_dir=elsewhere", NULL, &err), 1);
    cr_assert(strstr(err, "cannot move it"), "%s", err);
    cr_assert_eq(sh("test ! -e elsewhere"), 0);
    cr_assert_eq(sh("touch afile"), 0);
    cr_assert_eq(run("gru.cfg train.out_dir=afile", NULL, &err), 1);
    cr_assert(strstr(err, "afile is not a directory"), "%s", err);
    cr_assert_eq(run("gru.cfg train.out_dir=afile/run", NULL, &err), 1);
    cr_assert(strstr(err, "afile/run") && strstr(err, "Not a directory"), "%s", err);
}

// A prompt the vocabulary cannot encode fails before the first step, not after training.
Test(cli, the_sample_prompt_is_checked_before_training) {
    write_cfg("gru.cfg", gru_cfg);
    char *err;
    cr_assert_eq(run("gru.cfg train.steps=200 train.out_dir=run sample.prompt=QZ", NULL, &err), 1);
    cr_assert(strstr(err, "[sample] prompt has 2 tokens outside the vocabulary"), "%s", err);
    cr_assert_eq(sh("test ! -e run/last.safetensors"), 0, "it trained first");
}

// Validation leaves the carried recurrent state as it was: the training losses of a run that
// validates every 5 steps are those of one that validates only at the end.
Test(cli, validation_does_not_change_training) {
    same_paths_under_valgrind(); // validation every few steps: json_run_resume_and_sample
    write_cfg("gru.cfg", gru_cfg);
    char *err;
    cr_assert_eq(run("gru.cfg train.eval_every=5 train.out_dir=a", NULL, &err), 0, "%s", err);
    cr_assert_eq(run("gru.cfg train.eval_every=30 train.out_dir=b", NULL, &err), 0, "%s", err);
    cr_assert_eq(sh("cut -d, -f1,2 a/log.csv > a.txt && cut -d, -f1,2 b/log.csv > b.txt && cmp -s a.txt b.txt"), 0,
                 "validating changed the training losses:\n%s", slurp("a/log.csv"));
}

// Validation predicts every position of the split once: 500 tokens have 499 next tokens; the
// MLP with 4 tokens of context cannot predict the first 3.
Test(cli, validation_covers_every_position) {
    write_cfg("gru.cfg", gru_cfg);
    write_cfg("tf.cfg",
              "[model]\ntype = transformer\nlayers = 1\nheads = 2\nd_model = 16\nd_ff = 32\n[data]\npath = tiny.txt\n"
              "[train]\nsteps = 2\nbatch = 4\nblock = 16\n");
    write_cfg("mlp.cfg", "[model]\ntype = mlp\ncontext = 4\nembed = 8\nhidden = 16\n[data]\npath = tiny.txt\n"
                         "[train]\nsteps = 2\nbatch = 4\nblock = 16\n");
    const char *runs[][2] = {{"gru.cfg train.steps=2", "499"}, {"tf.cfg", "499"}, {"mlp.cfg", "496"}};
    for (int i = 0; i < 3; i++) {
        for (int batch = 3; batch <= 7;
             batch += 4) { // streams of 167 and 72 with a short last one; windows with a tail
            char args[256], *out, *err;
            snprintf(args, sizeof args, "%s --json train.eval_tokens=500 train.batch=%d train.out_dir=r%d_%d",
                     runs[i][0], batch, i, batch);
            cr_assert_eq(run(args, &out, &err), 0, "%s", err);
            cr_assert_eq(field(out, "val", "val_count"), atof(runs[i][1]), "%s: %g positions", args,
                         field(out, "val", "val_count"));
        }
    }
}

// Writes that fail (a file size limit, as a full disk does) stop with one line, keep the
// previous checkpoint, and leave no temporary file.
Test(cli, a_failed_checkpoint_write_keeps_the_previous_one) {
    write_cfg("gru.cfg", gru_cfg);
    char *err;
    cr_assert_eq(run("gru.cfg train.steps=10 train.out_dir=run", NULL, &err), 0, "%s", err);
    cr_assert_eq(sh("cp run/last.safetensors saved.safetensors"), 0);
    cr_assert_eq(run_env("trap '' XFSZ; ulimit -f 40;", "--resume run train.steps=20", NULL, &err), 1, "%s", err);
    cr_assert(strstr(err, "File too large") && strstr(err, "step 20 was not saved"), "%s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
    cr_assert_eq(sh("cmp -s run/last.safetensors saved.safetensors"), 0, "the previous checkpoint changed");
    cr_assert_eq(sh("test ! -e run/last.safetensors.tmp && test ! -e run/best.safetensors.tmp"), 0,
                 "a temporary file was left");
}

// A full disk (a small tmpfs; skipped where mounting is not allowed), then a read-only run dir.
Test(cli, a_full_disk_keeps_the_previous_checkpoint) {
    write_cfg("gru.cfg", gru_cfg);
    if (sh("mkdir disk && mount -t tmpfs -o size=256k tmpfs disk 2>/dev/null"))
        cr_skip_test("cannot mount a tmpfs here");
    char *err;
    int st = run("gru.cfg train.steps=10 train.log_every=1000 train.out_dir=disk/run", NULL, &err);
    // fill it but for 16 KB: room for the resumed run's small files, not for a checkpoint
    sh("cp disk/run/last.safetensors saved.safetensors; dd if=/dev/zero of=disk/fill bs=1k "
       "count=$(( $(df --output=avail -B1k disk | tail -1) - 16 )) 2>/dev/null");
    int st2 = run("--resume disk/run train.steps=20", NULL, &err);
    int same = sh("cmp -s disk/run/last.safetensors saved.safetensors");
    int tmp = sh("test ! -e disk/run/last.safetensors.tmp && test ! -e disk/run/best.safetensors.tmp");
    char err2[1024];
    snprintf(err2, sizeof err2, "%s", err);
    sh("rm disk/fill && mount -o remount,ro disk");
    int st3 = run("gru.cfg train.steps=10 train.out_dir=disk/run2", NULL, &err);
    sh("umount disk");
    cr_assert_eq(st, 0);
    cr_assert_eq(st2, 1, "%s", err2);
    cr_assert(strstr(err2, "No space left on device") && strstr(err2, "step 20 was not saved"), "%s", err2);
    cr_assert_eq(same, 0, "the previous checkpoint changed");
    cr_assert_eq(tmp, 0, "a temporary file was left");
    cr_assert_eq(st3, 1);
    cr_assert(strstr(err, "disk/run2") && strstr(err, "Read-only file system"), "%s", err);
}

// train.select = bleu: 'best' is the highest validation BLEU (best.safetensors, best_step,
// patience), and train.final = best evaluates the test split with those weights.
Test(cli, select_by_bleu_and_test_the_best_weights) {
    write_cfg("rev.cfg",
              "[model]\ntype = rnnsearch\nembed = 8\nhidden = 12\ndec_hidden = 12\nattn_dim = 8\n"
              "[data]\nkind = reverse\nmin_len = 2\nmax_len = 4\neval_size = 40\n"
              "[train]\nsteps = 60\nbatch = 8\neval_every = 10\nselect = bleu\nfinal = best\n[optim]\nlr = 0.03\n");
    char *out, *err;
    cr_assert_eq(run("rev.cfg --json train.out_dir=run", &out, &err), 0, "%s", err);
    double best = -1;
    long best_step = -1;
    for (const char *p = strstr(out, "{\"event\":\"val\""); p; p = strstr(p + 1, "{\"event\":\"val\"")) {
        double b = atof(strstr(p, "\"val_bleu\":") + 11);
        if (b > best) best = b, best_step = atol(strstr(p, "\"step\":") + 7);
        cr_assert_float_eq(atof(strstr(p, "\"best_val_bleu\":") + 16), best, 1e-6, "best so far at %.60s", p);
    }
    cr_assert_float_eq(field(out, "summary", "best_val_bleu"), best, 1e-6);
    cr_assert_eq(field(out, "summary", "best_step"), best_step);
    cr_assert_lt(best_step, 60, "this seed's best BLEU comes before the last step, so 'final = best' is exercised");
    // The test split decoded greedily with best.safetensors gives the exact matches the run printed.
    double exact = field(out, "summary", "test_exact");
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "cd %s && %s run --checkpoint best --beam 1 --file run/test.src > hyp.txt && "
             "paste -d '\\t' hyp.txt run/test.ref | awk -F '\\t' '$1 == $2 {n++} END {printf \"%%.4f\\n\", 100 * n / "
             "NR}' > exact.txt",
             dir, TZ_TRANSLATE_EXE);
    cr_assert_eq(system(cmd), 0);
    cr_assert_float_eq(atof(slurp("exact.txt")), exact, 1e-3, "exact %% of best.safetensors vs the run's %g", exact);
    cr_assert_eq(run("rev.cfg train.out_dir=run2 train.select=exact", &out, &err), 0, "%s", err);
    cr_assert_eq(run("rev.cfg train.out_dir=run3 train.select=perplexity", &out, &err), 1);
    cr_assert(strstr(err, "[train] select = 'perplexity' (this task has: loss, bleu, exact)"), "%s", err);
    cr_assert_eq(run("rev.cfg train.out_dir=run4 train.final=first", &out, &err), 1);
    cr_assert(strstr(err, "[train] final = 'first' (want last or best)"), "%s", err);
}

// train.time_limit ends a run on the wall clock, as its last step: validated, saved, summarised.
Test(cli, time_limit_stops_validates_and_saves) {
    write_cfg("rev.cfg", "[model]\ntype = rnnsearch\nembed = 8\nhidden = 12\ndec_hidden = 12\nattn_dim = 8\n"
                         "[data]\nkind = reverse\nmin_len = 2\nmax_len = 4\neval_size = 40\n"
                         "[train]\nsteps = 100000000\nbatch = 8\neval_every = 1000000\nlog_every = 1000000\n");
    char *out, *err;
    cr_assert_eq(run("rev.cfg --json train.out_dir=run train.time_limit=1.5", &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "\"stop\":\"time_limit\""), "%s", out);
    long steps = (long)field(out, "summary", "steps");
    cr_assert(steps > 0 && steps < 100000000);
    cr_assert_eq((long)field(out, "val", "step"), steps, "the last step is validated");
    cr_assert_eq((long)field(out, "summary", "best_step"), steps);
    cr_assert_geq(field(out, "summary", "wall_s"), 1.5);
    cr_assert_eq(run("rev.cfg train.out_dir=run2 train.time_limit=-1", &out, &err), 1);
    cr_assert(strstr(err, "time_limit"), "%s", err);
}

// A language model's [data] test is evaluated once, at the end, with the final weights: given the
// validation text as its test text it gives the last validation's loss (train.final = last) or
// the best one's (final = best), over the same positions. Too short a test text fails up front.
Test(cli, the_test_split_is_evaluated_with_the_final_weights) {
    write_cfg("gru.cfg", gru_cfg);
    cr_assert_eq(sh("head -n 60 tiny.txt > v.txt && head -n 1 tiny.txt | cut -c1-9 > short.txt"), 0);
    char *out, *err;
    const char *finals[] = {"last", "best"};
    for (int i = 0; i < 2; i++) {
        char args[256];
        snprintf(args, sizeof args, "gru.cfg --json data.valid=v.txt data.test=v.txt train.final=%s train.out_dir=%s",
                 finals[i], finals[i]);
        cr_assert_eq(run(args, &out, &err), 0, "%s", err);
        double val = field(out, "summary", i ? "best_val_loss" : "final_val_loss");
        cr_assert_float_eq(field(out, "summary", "test_loss"), val, 2e-6, "%s: test %g, val %g", args,
                           field(out, "summary", "test_loss"), val);
        cr_assert_eq(field(out, "summary", "test_tokens"), field(out, "val", "val_count"));
        cr_assert_float_eq(field(out, "summary", "test_ppl"), exp(val), 1e-3 * exp(val));
    }
    cr_assert_eq(run("gru.cfg data.valid=v.txt data.test=v.txt train.out_dir=text", &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "test: 1248 tokens, loss "), "%s", out); // v.txt's 1,249 characters predict 1,248
    cr_assert(strstr(out, ", perplexity "), "%s", out);
    cr_assert_eq(run("gru.cfg data.test=short.txt train.out_dir=short", &out, &err), 1);
    cr_assert(strstr(err, "[data] test: 10 tokens are fewer than one block of 16 + 1"), "%s", err);
}
