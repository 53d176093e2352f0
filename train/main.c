// train: the one trainer of the zoo.
//   train CFG [section.key=value ...] [--json]
//   train --resume RUN_DIR [section.key=value ...] [--json]
// Loop: forward, loss, backward, clip, optimiser step, LR schedule; validation every N steps on
// the whole (or first N tokens of the) validation split; best and last checkpoints; samples.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batcher.h"
#include "checkpoint.h"
#include "corpus.h"
#include "gemm.h"
#include "json.h"
#include "sampler.h"
#include "setup.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    if (interrupted) _exit(130); // a second Ctrl-C: stop now
    interrupted = 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static void mkdir_p(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) tz_fail("cannot create the run directory %s (%s)", path, strerror(errno));
}

// Mean cross-entropy (nats per predicted token) over one pass of a split, without gradients.
static double evaluate(const tz_model_def *def, void *m, tz_graph *g, const int *ids, long n, int B, int T) {
    int B_train = B;
    if (def->stream && (n - 1) / B < T) B = (int)((n - 1) / T); // fewer, full-length streams
    if (n - 1 < T) tz_fail("validation: %ld tokens are fewer than one block of %d + 1 ([train] eval_tokens, block)", n, T);
    tz_batcher eb;
    tz_batcher_init_eval(&eb, ids, n, B, T, def->stream, def->context ? def->context(m) : 0);
    int was_training = g->training;
    g->training = 0;
    tz_no_grad_begin(g);
    if (def->stream) def->reset(m, B);
    double total = 0;
    long count = 0;
    tz_batch b;
    while (tz_batcher_next(&eb, &b)) {
        tz_graph_reset(g);
        tz_tensor *logits = def->forward(g, m, &b);
        tz_tensor *loss = tz_cross_entropy(g, logits, b.targets, -1);
        total += loss->data[0] * b.n_targets;
        count += b.n_targets;
    }
    tz_no_grad_end(g);
    g->training = was_training;
    if (def->stream) def->reset(m, B_train); // the training streams start over from a fresh state
    tz_batcher_free(&eb);
    return count ? total / count : NAN;
}

// What a checkpoint needs besides the weights to continue bit for bit: both RNGs and the
// recurrent state carried into the next batch.
static void run_state(tz_ckpt_meta *m, const tz_model_def *def, void *model, const tz_batcher *tb, const tz_graph *g) {
    memcpy(m->rng, tb->rng.s, sizeof m->rng);
    memcpy(m->drop_rng, g->rng.s, sizeof m->drop_rng);
    if (def->carried) m->carried = def->carried(model, &m->carried_n);
}

static char *vocab_text(const tz_vocab *v) {
    char *buf;
    size_t size;
    FILE *m = open_memstream(&buf, &size);
    tz_vocab_save(v, m);
    fclose(m);
    return buf;
}

static void usage(FILE *f) {
    fprintf(f, "usage: train CFG [section.key=value ...] [--json]\n"
               "       train --resume RUN_DIR [section.key=value ...] [--json]\n"
               "  CFG            a model's cfg, e.g. models/transformer.cfg\n"
               "  section.key=v  override any cfg key, e.g. train.steps=200 optim.lr=3e-4\n"
               "  --resume DIR   continue the run in DIR from its last checkpoint\n"
               "  --json         JSON lines on stdout (events config, train, val, summary), nothing else\n"
               "  --profile      at the end, ms per step of each op's forward and backward (after the warm-up)\n");
}

int main(int argc, char **argv) {
    const char *cfg_path = NULL, *resume = NULL;
    int json = 0, profile = 0, n_over = 0;
    char **over = calloc(argc, sizeof *over);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc) resume = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout), 0;
        else if (argv[i][0] == '-') return fprintf(stderr, "train: unknown option '%s'\n", argv[i]), usage(stderr), 2;
        else if (strchr(argv[i], '=')) over[n_over++] = argv[i];
        else if (!cfg_path) cfg_path = argv[i];
        else return fprintf(stderr, "train: more than one cfg ('%s' and '%s')\n", cfg_path, argv[i]), 2;
    }
    if (!cfg_path == !resume) return usage(stderr), 2;
    FILE *out = json ? stderr : stdout; // with --json, stdout carries only JSON lines
    FILE *js = json ? stdout : NULL;

    // The configuration: the cfg file, or the run's own saved one when resuming.
    char resume_cfg[1100], last_path[1100], best_path[1100];
    tz_ckpt_meta meta = {0};
    if (resume) {
        snprintf(last_path, sizeof last_path, "%s/last.safetensors", resume);
        tz_ckpt_read_meta(last_path, &meta);
        snprintf(resume_cfg, sizeof resume_cfg, "%s/config.cfg", resume);
        FILE *f = fopen(resume_cfg, "w");
        if (!f || fputs(meta.cfg_text, f) < 0 || fclose(f)) tz_fail("cannot write %s", resume_cfg);
        cfg_path = resume_cfg;
    }
    static cfg c;
    const tz_model_def *def = tz_cfg_load(&c, cfg_path, over, n_over);
    if (resume && strcmp(meta.model, def->name)) tz_fail("%s: a checkpoint of '%s', the cfg is for '%s'", last_path, meta.model, def->name);
    int threads = (int)cfg_int(&c, "train", "threads");
    tz_set_threads(threads);
    long steps = cfg_int(&c, "train", "steps"), eval_every = cfg_int(&c, "train", "eval_every");
    long log_every = cfg_int(&c, "train", "log_every"), sample_every = cfg_int(&c, "train", "sample_every");
    long patience = cfg_int(&c, "train", "patience"), eval_tokens = cfg_int(&c, "train", "eval_tokens");
    int B = (int)cfg_int(&c, "train", "batch"), T = (int)cfg_int(&c, "train", "block");
    double clip = cfg_float(&c, "train", "clip"), clip_value = cfg_float(&c, "train", "clip_value");
    uint64_t seed = (uint64_t)cfg_int(&c, "train", "seed");
    if (steps < 0 || B < 1 || T < 1 || eval_every < 1 || log_every < 1)
        tz_fail("%s: [train] steps >= 0, batch, block, eval_every and log_every >= 1 (got %ld, %d, %d, %ld, %ld)", cfg_path,
                steps, B, T, eval_every, log_every);
    char run_dir[512];
    snprintf(run_dir, sizeof run_dir, "%s", resume ? resume : cfg_str(&c, "train", "out_dir"));
    if (!run_dir[0]) snprintf(run_dir, sizeof run_dir, "runs/%s", def->name);

    // Data, model, optimiser.
    tz_vocab saved_vocab;
    if (resume) {
        FILE *vf = fmemopen(meta.vocab_text, strlen(meta.vocab_text), "r");
        if (!vf || !tz_vocab_load(&saved_vocab, vf)) tz_fail("%s: the saved vocabulary is malformed (%s)", last_path, tz_vocab_error());
        fclose(vf);
    }
    tz_corpus corpus;
    tz_corpus_load(&corpus, &c, resume ? &saved_vocab : NULL);
    if (!corpus.n[SPLIT_VAL]) tz_fail("%s: no validation text ([data] valid, or split < 1)", cfg_path);
    int V = corpus.vocab.size;
    tz_rng rng;
    tz_rng_seed(&rng, seed);
    tz_params P;
    tz_params_init(&P);
    void *model = def->create(&c, V, &P, &rng);
    nn_optim_config oc = tz_optim_config(&c);
    nn_optim opt;
    nn_optim_init(&opt, &P, &oc);
    nn_schedule sched = tz_schedule_config(&c);
    long step = 0, best_step = -1;
    double best_val = INFINITY;
    if (resume) {
        tz_ckpt_load(last_path, &P, &opt);
        step = meta.step, best_val = meta.best_val, best_step = meta.best_step;
        memcpy(rng.s, meta.rng, sizeof rng.s);
    }
    tz_batcher tb;
    tz_batcher_init(&tb, corpus.ids[SPLIT_TRAIN], corpus.n[SPLIT_TRAIN], B, T, def->stream, seed + 1);
    if (resume) { // the batcher picks up where it was: same RNG draws, same stream position
        memcpy(tb.rng.s, meta.rng, sizeof tb.rng.s);
        tz_batcher_skip(&tb, step);
    }
    long eval_n = eval_tokens > 0 && eval_tokens < corpus.n[SPLIT_VAL] ? eval_tokens : corpus.n[SPLIT_VAL];
    tz_batcher_check(eval_n, B, T, def->stream, "validation"); // before training, not at the first evaluation
    mkdir_p(run_dir);
    snprintf(last_path, sizeof last_path, "%s/last.safetensors", run_dir);
    snprintf(best_path, sizeof best_path, "%s/best.safetensors", run_dir);
    // The saved configuration names the data by absolute paths: it must work from the run dir.
    for (int s = 0; s < N_SPLITS; s++) {
        const char *key = s == SPLIT_TRAIN ? "path" : s == SPLIT_VAL ? "valid" : "test";
        char abs[PATH_MAX];
        if (cfg_str(&c, "data", key)[0] && realpath(corpus.path[s], abs)) cfg_set(&c, "data", key, abs, "resolved");
    }
    char cfg_copy[1100], log_path[1100];
    snprintf(cfg_copy, sizeof cfg_copy, "%s/config.cfg", run_dir);
    snprintf(log_path, sizeof log_path, "%s/log.csv", run_dir);
    char *cfg_text;
    size_t cfg_len;
    FILE *cm = open_memstream(&cfg_text, &cfg_len);
    cfg_write(&c, cm);
    fclose(cm);
    FILE *cf = fopen(cfg_copy, "w");
    if (!cf || fputs(cfg_text, cf) < 0 || fclose(cf)) tz_fail("cannot write %s", cfg_copy);
    FILE *log = fopen(log_path, resume ? "a" : "w");
    if (!log) tz_fail("cannot write %s (%s)", log_path, strerror(errno));
    if (!resume) fprintf(log, "step,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n");
    char *vtext = vocab_text(&corpus.vocab);

    // The configuration, resolved, as the run will use it.
    if (js) {
        fprintf(js, "{\"event\":\"config\",\"model\":\"%s\",\"params\":%zu,\"vocab\":%d,\"train_tokens\":%ld,"
                    "\"val_tokens\":%ld,\"threads\":%d,\"gemm\":\"%s\",\"run_dir\":",
                def->name, P.n, V, corpus.n[SPLIT_TRAIN], eval_n, tz_get_threads(), tz_gemm_kernel_name());
        json_write_string(js, run_dir);
        fputs(",\"cfg\":", js);
        cfg_write_json(&c, js);
        fputs("}\n", js);
        fflush(js);
    }
    fprintf(out, "# %s: %s\n%s\n", def->name, def->paper, cfg_text);
    fprintf(out, "# %zu parameters, vocab %d (%s), %ld train / %ld val tokens, %d threads, gemm %s, run dir %s%s\n", P.n,
            V, tz_tok_name(corpus.vocab.kind), corpus.n[SPLIT_TRAIN], eval_n, tz_get_threads(), tz_gemm_kernel_name(),
            run_dir, resume ? " (resumed)" : "");

    signal(SIGINT, on_sigint);
    tz_graph g;
    tz_graph_init(&g, 1 << 22);
    g.training = 1;
    tz_rng_seed(&g.rng, seed + 2);
    if (resume && meta.has_drop_rng) memcpy(g.rng.s, meta.drop_rng, sizeof g.rng.s); // same dropout masks
    tz_rng sample_rng; // samples draw from their own generator: they never move the dropout masks
    tz_rng_seed(&sample_rng, seed + 3);
    int tty = !json && isatty(fileno(stdout));
    double t_start = now(), t_train = 0, t_fwd = 0, t_bwd = 0, t_opt = 0, sum_loss = 0, last_train = NAN, last_val = NAN;
    double t_all = 0; // every step, for runs too short to have steps after the warm-up
    long tokens_all = 0, timed_steps = 0, timed_tokens = 0, n_loss = 0, bad_evals = 0, start_step = step;
    const int warmup = 20; // steps excluded from the speed figures (page faults, arena growth)
    double grad_norm = 0;
    int status = 0;
    if (def->stream) def->reset(model, B);
    size_t n_carried = 0;
    real *carried = def->carried ? def->carried(model, &n_carried) : NULL;
    if (resume && carried && tz_ckpt_load_carried(last_path, carried, n_carried) < 0) // the state it stopped with
        fprintf(out, "note: %s was saved with another batch size: the carried state starts from zeros\n", last_path);
    // Samples must not change training: they draw from sample_rng, and the carried state is kept
    // here while they run (made once: the batch size, and so the state's size, is fixed).
    real *kept = n_carried && sample_every > 0 && !json ? malloc(sizeof(real) * n_carried) : NULL;
    if (n_carried && sample_every > 0 && !json && !kept) tz_fail("train: out of memory for the carried state");
    while (step < steps && !interrupted) {
        tz_batch b;
        if (tz_batcher_next(&tb, &b) && def->stream) def->reset(model, B);
        if (profile && step - start_step == warmup) tz_profile_start(&g);
        double t0 = now();
        tz_params_zero_grad(&P);
        tz_graph_reset(&g); // after the zeroing: --profile counts from here
        tz_tensor *logits = def->forward(&g, model, &b);
        tz_tensor *loss = tz_cross_entropy(&g, logits, b.targets, -1);
        double t1 = now();
        tz_backward(&g, loss);
        double t2 = now();
        double lr = nn_schedule_lr(&sched, step);
        if (clip_value > 0) nn_clip_grad_value(&P, clip_value);
        grad_norm = nn_clip_grad_norm(&P, clip > 0 ? clip : INFINITY);
        double l = loss->data[0];
        if (!isfinite(l) || !isfinite(grad_norm)) {
            fprintf(stderr, "train: step %ld: the loss is %g (gradient norm %g): stopping. The last good checkpoint is %s%s\n",
                    step, l, grad_norm, last_path, access(last_path, F_OK) ? " (none yet)" : "");
            status = 1;
            break;
        }
        nn_optim_step(&opt, &P, lr);
        double t3 = now();
        step++;
        t_all += t3 - t0, tokens_all += b.n_targets;
        if (step - start_step > warmup) {
            t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2, t_train += t3 - t0;
            timed_steps++, timed_tokens += b.n_targets;
        }
        sum_loss += l, n_loss++;
        int do_eval = step % eval_every == 0 || step == steps;
        if (step % log_every == 0 || do_eval) {
            double tps = t_train > 0 ? timed_tokens / t_train : 0, elapsed = now() - t_start;
            last_train = sum_loss / n_loss;
            if (do_eval) {
                last_val = evaluate(def, model, &g, corpus.ids[SPLIT_VAL], eval_n, B, T);
                int improved = last_val < best_val;
                if (improved) best_val = last_val, best_step = step, bad_evals = 0;
                else bad_evals++;
                tz_ckpt_meta m = {.step = step, .best_val = best_val, .best_step = best_step, .cfg_text = cfg_text, .vocab_text = vtext};
                snprintf(m.model, sizeof m.model, "%s", def->name);
                run_state(&m, def, model, &tb, &g);
                if (improved) tz_ckpt_save(best_path, &P, &opt, &m);
                tz_ckpt_save(last_path, &P, &opt, &m);
                if (js) fprintf(js, "{\"event\":\"val\",\"step\":%ld,\"val_loss\":%.6f,\"best_val_loss\":%.6f,\"best_step\":%ld}\n", step, last_val, best_val, best_step);
            }
            char val[32] = "";
            if (do_eval) snprintf(val, sizeof val, "%.6f", last_val);
            fprintf(log, "%ld,%.6f,%s,%.3e,%.4f,%.1f,%.2f\n", step, last_train, val, lr, grad_norm, tps, elapsed);
            fflush(log);
            if (js) fprintf(js, "{\"event\":\"train\",\"step\":%ld,\"train_loss\":%.6f,\"lr\":%.4e,\"grad_norm\":%.4f,\"tokens_per_s\":%.1f,\"elapsed_s\":%.2f}\n",
                            step, last_train, lr, grad_norm, tps, elapsed);
            double eta = timed_steps ? (steps - step) * (t_train / timed_steps) : 0;
            if (tty) {
                int w = 24, done = (int)(w * step / (steps ? steps : 1));
                fprintf(out, "\r%6ld/%ld [%.*s%*s] loss %.4f val %.4f lr %.2e %.0f tok/s ETA %ld:%02ld ", step, steps, done,
                        "########################", w - done, "", last_train, last_val, lr, tps, (long)eta / 60, (long)eta % 60);
                if (do_eval) fputc('\n', out);
            } else {
                fprintf(out, "step %ld/%ld train %.4f%s", step, steps, last_train, do_eval ? "" : "\n");
                if (do_eval) fprintf(out, " val %.4f (best %.4f at %ld)\n", last_val, best_val, best_step);
            }
            fflush(out);
            if (js) fflush(js);
            sum_loss = 0, n_loss = 0;
            if (do_eval && patience > 0 && bad_evals >= patience) {
                fprintf(out, "early stop: no improvement in %ld validations (best %.4f at step %ld)\n", bad_evals, best_val, best_step);
                break;
            }
        }
        if (sample_every > 0 && step % sample_every == 0 && !json) {
            tz_sample_opts so = {(int)cfg_int(&c, "sample", "tokens"), cfg_float(&c, "sample", "temperature"),
                                 (int)cfg_int(&c, "sample", "top_k"), T};
            fprintf(out, "--- sample at step %ld\n", step);
            if (kept) memcpy(kept, def->carried(model, &n_carried), sizeof(real) * n_carried);
            tz_sample(def, model, &corpus.vocab, cfg_str(&c, "sample", "prompt"), &so, &sample_rng, out);
            fprintf(out, "\n---\n");
            if (def->stream) def->reset(model, B); // the sampler ran one stream
            if (kept) memcpy(def->carried(model, &n_carried), kept, sizeof(real) * n_carried);
        }
    }
    if (interrupted) { // Ctrl-C: keep what was learned
        tz_ckpt_meta m = {.step = step, .best_val = best_val, .best_step = best_step, .cfg_text = cfg_text, .vocab_text = vtext};
        snprintf(m.model, sizeof m.model, "%s", def->name);
        run_state(&m, def, model, &tb, &g);
        tz_ckpt_save(last_path, &P, &opt, &m);
        fprintf(out, "\ninterrupted at step %ld: checkpoint saved to %s (continue with: train --resume %s)\n", step, last_path, run_dir);
    }
    if (status == 0 && !json && !interrupted && steps > 0) {
        tz_sample_opts so = {(int)cfg_int(&c, "sample", "tokens"), cfg_float(&c, "sample", "temperature"),
                             (int)cfg_int(&c, "sample", "top_k"), T};
        fprintf(out, "--- sample\n");
        tz_sample(def, model, &corpus.vocab, cfg_str(&c, "sample", "prompt"), &so, &sample_rng, out);
        fprintf(out, "\n---\n");
    }
    if (!timed_steps && step > start_step) { // too short for a warm-up: every step counts
        t_train = t_all, timed_tokens = tokens_all, timed_steps = step - start_step;
    }
    double wall = now() - t_start, tps = t_train > 0 ? timed_tokens / t_train : 0;
    double ms = timed_steps ? 1e3 * t_train / timed_steps : 0;
    if (js) {
        fprintf(js, "{\"event\":\"summary\",\"model\":\"%s\",\"params\":%zu,\"steps\":%ld,\"tokens_per_s\":%.1f,\"ms_per_step\":%.3f,"
                    "\"ms_forward\":%.3f,\"ms_backward\":%.3f,\"ms_optimizer\":%.3f,\"final_train_loss\":%.6f,\"final_val_loss\":%.6f,"
                    "\"best_val_loss\":%.6f,\"best_step\":%ld,\"wall_s\":%.2f,\"peak_rss_mb\":%.1f,\"threads\":%d,\"status\":%d}\n",
                def->name, P.n, step, tps, ms, timed_steps ? 1e3 * t_fwd / timed_steps : 0, timed_steps ? 1e3 * t_bwd / timed_steps : 0,
                timed_steps ? 1e3 * t_opt / timed_steps : 0, last_train, last_val, best_val, best_step, wall, peak_rss_mb(),
                tz_get_threads(), status);
    }
    fprintf(out, "done: %ld steps, train %.4f, val %.4f (best %.4f at step %ld), %.0f tokens/s, %.2f ms/step, %.1f s, peak RSS %.0f MB\n",
            step, last_train, last_val, best_val, best_step, tps, ms, wall, peak_rss_mb());
    if (profile) {
        tz_profile_print(&g, out, timed_steps);
        fprintf(out, "%-22s %9s %9s %9s %7.3f (clip, optimiser, schedule)\n", "optimiser", "", "", "",
                timed_steps ? 1e3 * t_opt / timed_steps : 0);
    }
    fprintf(out, "run: %s (log.csv, config.cfg, best.safetensors, last.safetensors)\n", run_dir);
    fprintf(out, "plot: gnuplot -e \"runs='%s'\" %s/tools/plot_loss.gp   (writes %s/loss.png", run_dir, TZ_SOURCE_ROOT, run_dir);
    if (system("command -v gnuplot >/dev/null 2>&1")) fprintf(out, "; gnuplot is not installed: sudo apt-get install gnuplot-nox");
    fprintf(out, ")\n");
    fclose(log);
    free(kept);
    free(cfg_text);
    free(vtext);
    free(over);
    tz_batcher_free(&tb);
    tz_graph_free(&g);
    nn_optim_free(&opt);
    def->free(model);
    tz_params_free(&P);
    tz_corpus_free(&corpus);
    if (resume) tz_vocab_free(&saved_vocab), tz_ckpt_meta_free(&meta);
    return status;
}
