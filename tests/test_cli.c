// The trainer and sampler as a user runs them: a tiny run with --json, resume, Ctrl-C, and the
// one-line errors for bad input (exit status != 0, nothing already saved lost).
#include <criterion/criterion.h>
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

// Runs a command in dir; returns its exit status and what it wrote (stdout in *out, stderr in *err).
static int run(const char *args, char **out, char **err) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s >out.txt 2>err.txt", dir, TZ_TRAIN_EXE, args);
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

// Starts the trainer with args in dir (output in o.txt), after the shell words `env` (variable
// assignments, or ""). Returns its pid.
static pid_t start(const char *env, const char *args) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && %s exec %s %s >o.txt 2>&1", dir, env, TZ_TRAIN_EXE, args);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
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
    snprintf(cmd, sizeof cmd, "cd %s && cut -d, -f1-3 a/log.csv > a.txt && cut -d, -f1-3 b/log.csv > b.txt && cmp -s a.txt b.txt", dir);
    cr_assert_eq(system(cmd), 0, "losses differ between the run that samples and the one that does not");
}

// 64 streams of the tiny text wrap every few steps: resuming must land on the same stream position.
Test(cli, resume_across_epochs_is_exact) {
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

Test(cli, nan_stops_without_losing_the_checkpoint) {
    write_cfg("gru.cfg", gru_cfg);
    char *err;
    cr_assert_eq(run("gru.cfg train.steps=10 train.out_dir=run optim.name=sgd optim.lr=0.1", NULL, &err), 0, "%s", err);
    char before[256], cmd[600];
    snprintf(before, sizeof before, "%s/run/last.safetensors", dir);
    snprintf(cmd, sizeof cmd, "cp %s %s.saved", before, before);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(run("--resume run train.steps=30 optim.lr=1e38 train.clip=0", NULL, &err), 1); // overflows
    cr_assert(strstr(err, "the loss is") || strstr(err, "gradient norm"), "%s", err);
    snprintf(cmd, sizeof cmd, "cmp -s %s %s.saved", before, before);
    cr_assert_eq(system(cmd), 0, "the good checkpoint is untouched");
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
static const char *slow = "LD_PRELOAD=" TZ_SLOW_IO " ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 TZ_SLOW_RENAME=3 TZ_SLOW_MARK=saving";

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
