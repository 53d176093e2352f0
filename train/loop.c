// loop.c: the training loop (see loop.h).
#include "loop.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dist.h"
#include "gemm.h"
#include "json.h"

// SIGINT and SIGTERM: the first asks the loop to save and stop (exit 128 + the signal); a second
// one stops at once, except while a checkpoint is being written, which is always finished (the
// handler may run on any thread, so `saving` is a flag, not only a signal mask).
static atomic_int stop_signal, saving;
static void on_signal(int sig) {
    if (atomic_load(&stop_signal) && !atomic_load(&saving)) _exit(128 + atomic_load(&stop_signal));
    int none = 0;
    atomic_compare_exchange_strong(&stop_signal, &none, sig);
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

// How many consecutive steps with a loss above DIVERGED_FACTOR * ln(vocabulary) (three times
// what a uniform guess scores) make a run diverged; a validation above it does at once.
enum { DIVERGED_STEPS = 20 };
#define DIVERGED_FACTOR 3.0

typedef struct loop_state {
    tz_run *r;
    tz_task *t;
    tz_params *P;
    nn_optim opt;
    tz_graph g;
    long step, best_step;
    long saved_step; // step of the last checkpoint in last.safetensors (-1: none)
    double best_val;
} loop_state;

// The tensor of P that element i of its block belongs to.
static int tensor_of(const tz_params *P, size_t i) {
    int k = 0;
    while (k + 1 < P->count && P->off[k + 1] <= i) k++;
    return k;
}

static long first_bad(const real *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (long)i;
    return -1;
}

// Describes the first non-finite value of the weights, then (grads) of their gradients, then
// (o != NULL) of the optimiser's state, into what. Returns 0 when every value is finite.
static int find_nonfinite(const tz_params *P, int grads, const nn_optim *o, char *what, size_t size) {
    long i = first_bad(P->data, P->n);
    if (i >= 0) return snprintf(what, size, "weight '%s' is %g", P->names[tensor_of(P, i)], (double)P->data[i]), 1;
    if (grads && P->grad && (i = first_bad(P->grad, P->n)) >= 0)
        return snprintf(what, size, "gradient of '%s' is %g", P->names[tensor_of(P, i)], (double)P->grad[i]), 1;
    for (int s = 0; o && s < o->n_state; s++)
        if ((i = first_bad(o->state[s], o->n)) >= 0)
            return snprintf(what, size, "optimiser state %s of '%s' is %g", o->state_name[s], P->names[tensor_of(P, i)],
                            (double)o->state[s][i]),
                   1;
    return 0;
}

// v with 6 decimals, or null when it is not finite (no training step ran, or none was validated):
// JSON has no nan or inf.
static const char *json_number(char buf[32], double v) {
    if (!isfinite(v)) return "null";
    snprintf(buf, 32, "%.6f", v);
    return buf;
}

// Saves the run's whole state to path: weights, optimiser, step, RNGs, the task's part. Never
// writes non-finite weights or optimiser state (returns 0 and describes the first in what); a
// failed write removes its temporary file and stops with one line saying what was kept.
static int save(loop_state *s, const char *path, char *what, size_t size) {
    if (find_nonfinite(s->P, 0, &s->opt, what, size)) return 0;
    tz_ckpt_meta m = {.step = s->step, .best_val = s->best_val, .best_step = s->best_step, .cfg_text = s->r->cfg_text};
    snprintf(m.model, sizeof m.model, "%s", s->t->def->name);
    memcpy(m.drop_rng, s->g.rng.s, sizeof m.drop_rng);
    s->t->save_state(s->t, &m); // several ranks: every rank takes part (the carried state is gathered)
    if (path == s->r->last) s->saved_step = s->step;
    if (dist_rank()) return 1; // rank 0 alone writes
    char tmp[1200], note[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path); // tz_ckpt_save's temporary file
    snprintf(note, sizeof note, "step %ld was not saved", s->step); // tz_ckpt_save says the previous one is kept
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    atomic_store(&saving, 1);
    tz_run_on_fail(tmp, note);
    tz_ckpt_save(path, s->P, &s->opt, &m);
    tz_run_on_fail(NULL, NULL);
    atomic_store(&saving, 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 1;
}

// Resuming: log.csv keeps its header and the rows up to the checkpoint's step; rows written
// after it (by a run killed before its next checkpoint) would otherwise appear twice.
static void log_cut(const char *path, long step) {
    FILE *f = fopen(path, "r");
    if (!f) return; // none: a new one with its header
    char line[4096];
    long keep = 0;
    int header = 1;
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (line[len - 1] != '\n') break; // a line cut by the kill, or too long: dropped
        if (!header && atol(line) > step) break;
        header = 0, keep = ftell(f);
    }
    fclose(f);
    if (truncate(path, keep)) tz_fail("cannot cut %s back to step %ld (%s)", path, step, strerror(errno));
}

// The run stops because its numbers went bad: one line on stderr naming the step, what went bad
// and the checkpoint that is kept. Returns the exit status.
static int stop_numbers(const loop_state *s, long step, const char *fmt, ...) {
    if (dist_rank()) return TZ_EXIT_NUMBERS; // every rank stops at the same step; rank 0 says why
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s->saved_step >= 0)
        fprintf(stderr, "train: step %ld: %s: stopping. The last good checkpoint is %s (step %ld)\n", step, msg,
                s->r->last, s->saved_step);
    else fprintf(stderr, "train: step %ld: %s: stopping. No checkpoint was written\n", step, msg);
    return TZ_EXIT_NUMBERS;
}

// Several ranks: the loss, the target count and the gradients of the global batch from each
// rank's share of it. A rank's loss is the mean over its own n targets, so its gradient is
// weighted by n / N (N: the batch's targets) before the sum: the result is the gradient of one
// process on the whole batch, however the targets fall (padded translation batches give the
// ranks different counts). A stop request (SIGINT, SIGTERM on any rank) travels along, so every
// rank stops after the same step. Buffers (BatchNorm's running statistics, updated by each rank
// from its own rows) are averaged, so the ranks' weights stay identical. Returns the batch's
// loss; *n becomes N.
static double reduce_step(tz_params *P, double loss, long *n, int *stop) {
    int sig = atomic_load(&stop_signal);
    double v[4] = {loss * (double)*n, (double)*n, sig == SIGINT, sig == SIGTERM};
    dist_sum(v, 4);
    real w = (real)((double)*n / v[1]);
    for (size_t i = 0; i < P->n; i++) P->grad[i] *= w;
    dist_sum_real(P->grad, P->n); // MPI_Allreduce in place over the one gradient block
    for (int k = 0; k < P->count; k++)
        if (P->flags[k] & TZ_PARAM_BUFFER) {
            real *x = P->data + P->off[k], scale = (real)(1.0 / dist_size());
            dist_sum_real(x, (size_t)P->t[k]->n);
            for (long i = 0; i < P->t[k]->n; i++) x[i] *= scale;
        }
    if (v[2] > 0) *stop = SIGINT;
    else if (v[3] > 0) *stop = SIGTERM;
    *n = (long)v[1];
    return v[0] / v[1];
}

// A fingerprint of the weights: ranks must hold the same ones (checked at each validation).
static uint64_t weights_hash(const tz_params *P) {
    uint64_t h = 1469598103934665603ull; // FNV-1a over the bits of each weight
    for (size_t i = 0; i < P->n; i++) {
        uint64_t bits = 0;
        memcpy(&bits, &P->data[i], sizeof P->data[i]);
        h = (h ^ bits) * 1099511628211ull;
    }
    return h;
}

// A test hook's "N" or "N:R" (step N, on rank R only): the step, or -1 when it does not apply here.
static long hook_step(const char *name) {
    const char *v = getenv(name), *colon = v ? strchr(v, ':') : NULL;
    if (!v || (colon && atoi(colon + 1) != dist_rank())) return -1;
    return atol(v);
}

// early: 1 patience ran out, 2 train.time_limit was reached
static const char *stop_name(int status, int stop_sig, int early) {
    if (stop_sig) return "interrupted";
    if (status == TZ_EXIT_NUMBERS) return "numbers";
    return early == 2 ? "time_limit" : early ? "early_stop" : "done";
}

// One validation's JSON event (--json).
static void write_val_event(FILE *js, const tz_task *t, long step, const tz_eval *ev, const char *sel_name, double best,
                            long best_step) {
    fprintf(js, "{\"event\":\"val\",\"step\":%ld,\"val_loss\":%.6f,\"val_count\":%ld", step, tz_eval_loss(ev),
            ev->count);
    for (int k = 0; k < t->n_metrics; k++) fprintf(js, ",\"val_%s\":%.6f", t->metric_names[k], ev->metric[k]);
    fprintf(js, ",\"best_val_%s\":%.6f,\"best_step\":%ld}\n", sel_name, best, best_step);
}

// One row of log.csv; without train (no step yet) or ev (no validation) those columns are empty.
static void write_csv_row(FILE *csv, const char *path, const tz_task *t, long step, const double *train,
                          const tz_eval *ev, double lr, double grad_norm, double tps, double elapsed) {
    fprintf(csv, "%ld,", step);
    if (train) fprintf(csv, "%.6f", *train);
    fputc(',', csv);
    if (ev) fprintf(csv, "%.6f", tz_eval_loss(ev));
    fprintf(csv, ",%.3e,%.4f,%.1f,%.2f", lr, grad_norm, tps, elapsed);
    for (int k = 0; k < t->n_metrics; k++) ev ? fprintf(csv, ",%.6f", ev->metric[k]) : fputc(',', csv);
    fputc('\n', csv);
    if (fflush(csv) || ferror(csv)) tz_fail("cannot write %s (%s)", path, strerror(errno));
}

int tz_train_select(const cfg *c, const tz_model_def *def) {
    const char *names[TZ_TASK_MAX_METRICS];
    int n = tz_task_metrics(def, names);
    const char *select = cfg_str(c, "train", "select");
    int sel = -1;
    for (int k = 0; k < n; k++)
        if (!strcmp(select, names[k])) sel = k;
    if (sel < 0 && strcmp(select, "loss")) {
        char all[128] = "loss";
        for (int k = 0; k < n; k++) snprintf(all + strlen(all), sizeof all - strlen(all), ", %s", names[k]);
        tz_fail("%s: [train] select = '%s' (this task has: %s)", c->path, select, all);
    }
    return sel;
}

int tz_train(tz_run *r, tz_task *t, tz_params *P) {
    const cfg *c = &r->c;
    FILE *out = r->out, *js = r->js;
    long steps = cfg_int(c, "train", "steps"), eval_every = cfg_int(c, "train", "eval_every");
    long log_every = cfg_int(c, "train", "log_every"), sample_every = cfg_int(c, "train", "sample_every");
    long patience = cfg_int(c, "train", "patience");
    double time_limit = cfg_float(c, "train", "time_limit");
    int sel = tz_train_select(c, t->def);
    const char *final = cfg_str(c, "train", "final");
    const char *sel_name = sel < 0 ? "loss" : t->metric_names[sel];
    double clip = cfg_float(c, "train", "clip"), clip_value = cfg_float(c, "train", "clip_value");
    real smoothing = (real)cfg_float(c, "train", "label_smoothing"); // training only: validation reports plain CE
    uint64_t seed = (uint64_t)cfg_int(c, "train", "seed");
    int skip_nonfinite = !strcmp(cfg_str(c, "train", "on_nonfinite"), "skip");
    const tz_model_def *def = t->def;
    loop_state s = {
        .r = r, .t = t, .P = P, .best_step = -1, .saved_step = -1, .best_val = sel < 0 ? INFINITY : -INFINITY};
    nn_optim_config oc = tz_optim_config(c);
    nn_optim_init(&s.opt, P, &oc);
    nn_schedule sched = tz_schedule_config(c);
    if (r->resume) {
        tz_ckpt_load(r->last, P, &s.opt);
        s.step = s.saved_step = r->meta.step, s.best_val = r->meta.best_val, s.best_step = r->meta.best_step;
        t->resume(t, &r->meta, r->last, out);
        if (!dist_rank()) log_cut(r->log_path, s.step);
    }
    int ranks = dist_size();
    if (dist_rank()) r->log_path[0] = 0; // rank 0 alone writes the log
    FILE *csv = fopen(r->log_path[0] ? r->log_path : "/dev/null", r->resume ? "a" : "w");
    if (!csv) tz_fail("cannot write %s (%s)", r->log_path, strerror(errno));
    if (fseek(csv, 0, SEEK_END) || ftell(csv) == 0) {
        fprintf(csv, "step,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s");
        for (int k = 0; k < t->n_metrics; k++) fprintf(csv, ",val_%s", t->metric_names[k]);
        fputc('\n', csv);
    }

    // The configuration, resolved, as the run will use it.
    char *desc_text, *desc_json;
    size_t len;
    FILE *dt = open_memstream(&desc_text, &len), *dj = open_memstream(&desc_json, &len);
    if (!dt || !dj) tz_fail("train: out of memory");
    t->describe(t, dt, dj);
    if (fclose(dt) || fclose(dj)) tz_fail("train: out of memory");
    if (js) {
        fprintf(js,
                "{\"event\":\"config\",\"model\":\"%s\",\"params\":%zu%s,\"ranks\":%d,\"threads\":%d,\"gemm\":\"%s\","
                "\"run_dir\":",
                def->name, P->n, desc_json, ranks, tz_get_threads(), tz_gemm_kernel_name());
        json_write_string(js, r->dir);
        fputs(",\"cfg\":", js);
        cfg_write_json(c, js);
        fputs("}\n", js);
        fflush(js);
    }
    fprintf(out, "# %s: %s\n%s\n", def->name, def->paper, r->cfg_text);
    char ranks_text[32] = "";
    if (ranks > 1) snprintf(ranks_text, sizeof ranks_text, "%d ranks x ", ranks);
    fprintf(out, "# %zu parameters, %s, %s%d threads, gemm %s, run dir %s%s\n", P->n, desc_text, ranks_text,
            tz_get_threads(), tz_gemm_kernel_name(), r->dir, r->resume ? " (resumed)" : "");
    free(desc_text);
    free(desc_json);

    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    tz_graph *g = &s.g;
    tz_graph_init(g, 1 << 22);
    g->training = 1;
    tz_rng_seed(&g->rng, seed + 2);
    if (r->resume && r->meta.has_drop_rng) memcpy(g->rng.s, r->meta.drop_rng, sizeof g->rng.s); // same dropout masks
    // Several ranks: each its own dropout masks. Rank 0 keeps the stream a checkpoint saves; the
    // others derive theirs from it and their rank (so a resumed run with dropout is reproducible,
    // but not bit for bit the run that was not stopped).
    if (dist_rank()) tz_rng_seed(&g->rng, g->rng.s[0] ^ (0x9E3779B97F4A7C15ull * (uint64_t)dist_rank()));
    int tty = !r->json && isatty(fileno(stdout));
    double t_start = tz_now(), t_train = 0, t_fwd = 0, t_bwd = 0, t_opt = 0, sum_loss = 0, last_train = NAN,
           last_val = NAN;
    double t_all = 0; // every step, for runs too short to have steps after the warm-up
    long tokens_all = 0, timed_steps = 0, timed_tokens = 0, n_loss = 0, bad_evals = 0, start_step = s.step;
    long high_steps = 0, skipped = 0, skipped_in_a_row = 0;
    const int warmup = 20; // steps excluded from the speed figures (page faults, arena growth)
    double grad_norm = 0, diverged_above = INFINITY;
    int status = 0, early = 0;
    char what[512];
    tz_eval ev = {0};
    // Test hooks: TZ_TEST_NAN_AT=N makes step N's loss NaN (a transient fault, for on_nonfinite);
    // TZ_TEST_FAIL_AT=N fails at step N (tz_fail). Either as N:R acts on rank R alone.
    long nan_at = hook_step("TZ_TEST_NAN_AT"), fail_at = hook_step("TZ_TEST_FAIL_AT");
    double t_comm = 0; // several ranks: the reductions of each step
    int agreed_stop = 0; // several ranks: the signal all of them stop for, after the same step
    while (s.step < steps && !(ranks > 1 ? agreed_stop : atomic_load(&stop_signal))) {
        if (s.step + 1 == fail_at) tz_fail("step %ld: failing as TZ_TEST_FAIL_AT asks", s.step + 1);
        tz_batch b;
        t->next(t, &b);
        if (r->profile && s.step - start_step == warmup) tz_profile_start(g);
        double t0 = tz_now();
        tz_params_grad_begin(P); // the backward overwrites each gradient instead of adding to zeros
        tz_graph_reset(g); // after this: --profile counts from here
        tz_tensor *logits = def->forward(g, t->model, &b);
        tz_tensor *loss = tz_cross_entropy_smooth(g, logits, b.targets, TZ_IGNORE, smoothing);
        double t1 = tz_now();
        tz_backward(g, loss);
        tz_params_grad_end(P);
        double t2 = tz_now();
        long n_targets = t->n_targets ? t->n_targets(t, &b) : b.n_targets; // this rank's
        double l = s.step + 1 == nan_at ? NAN : loss->data[0];
        if (ranks > 1) l = reduce_step(P, l, &n_targets, &agreed_stop); // now the global batch's
        double tc = tz_now();
        t_comm += tc - t2;
        double lr = nn_schedule_lr(&sched, s.step);
        if (clip_value > 0) nn_clip_grad_value(P, clip_value); // clipping sees the summed gradient
        grad_norm = nn_grad_norm(P); // clipping is a factor on the gradient the optimiser step reads
        double grad_scale = nn_clip_scale(grad_norm, clip > 0 ? clip : INFINITY);
        diverged_above = DIVERGED_FACTOR * log((double)logits->shape[logits->ndim - 1]);
        int skip = 0;
        if (!isfinite(l) || !isfinite(grad_norm)) {
            // The first bad value says where it started: weights already non-finite cannot be skipped.
            int weights_bad = find_nonfinite(P, 0, NULL, what, sizeof what);
            if (!weights_bad && !find_nonfinite(P, 1, NULL, what, sizeof what))
                snprintf(what, sizeof what, "weights and gradients are finite");
            if (skip_nonfinite && !weights_bad && ++skipped_in_a_row < DIVERGED_STEPS) {
                if (!dist_rank())
                    fprintf(
                        stderr,
                        "train: step %ld: the loss is %g, gradient norm %g (%s): step skipped (train.on_nonfinite = "
                        "skip)\n",
                        s.step + 1, l, grad_norm, what);
                skipped++, skip = 1;
            } else {
                status = stop_numbers(
                    &s, s.step + 1, "the loss is %g, gradient norm %g (%s)%s", l, grad_norm, what,
                    skipped_in_a_row >= DIVERGED_STEPS ? "; every step skipped since the last finite one" : "");
                break;
            }
        } else skipped_in_a_row = 0;
        if (!skip)
            nn_optim_step_scaled(&s.opt, P, lr,
                                 grad_scale); // a skipped step still counts: the batches stay where a resume puts them
        double t3 = tz_now();
        s.step++;
        t_all += t3 - t0, tokens_all += n_targets;
        if (s.step - start_step > warmup) {
            t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - tc, t_train += t3 - t0;
            timed_steps++, timed_tokens += n_targets;
        }
        if (!skip) sum_loss += l, n_loss++;
        high_steps = l > diverged_above ? high_steps + 1 : 0;
        if (high_steps >= DIVERGED_STEPS) {
            status = stop_numbers(&s, s.step,
                                  "diverged: the loss has been above %.3g (3 x ln(vocabulary)) for %d steps (now %g; "
                                  "lower optim.lr or set train.clip)",
                                  diverged_above, DIVERGED_STEPS, l);
            break;
        }
        // A time limit ends the run like its last step: validated, saved, then the final evaluation.
        int out_of_time = time_limit > 0 && tz_now() - t_start >= time_limit;
        if (ranks > 1 && time_limit > 0) { // every rank's clock: all stop at the same step if any is out of time
            double late = out_of_time;
            dist_sum(&late, 1);
            out_of_time = late > 0;
        }
        int do_eval = s.step % eval_every == 0 || s.step == steps || out_of_time;
        if (s.step % log_every == 0 || do_eval) {
            double tps = t_train > 0 ? timed_tokens / t_train : 0, elapsed = tz_now() - t_start;
            last_train = n_loss ? sum_loss / n_loss : NAN;
            if (do_eval) {
                ev = (tz_eval){0};
                t->evaluate(t, g, &ev); // several ranks: each its share, summed
                if (ranks > 1 && !dist_same(weights_hash(P)))
                    tz_fail("step %ld: the ranks' weights differ (their summed gradients were not identical)", s.step);
                last_val = tz_eval_loss(&ev);
                // A checkpoint is only ever written from a sound state: finite weights and optimiser
                // state, and a validation loss that is finite and not diverged.
                if (find_nonfinite(P, 0, &s.opt, what, sizeof what) || !(last_val <= diverged_above)) {
                    if (!find_nonfinite(P, 0, &s.opt, what, sizeof what))
                        snprintf(what, sizeof what,
                                 "diverged: validation loss %g is above %.3g (3 x ln(vocabulary); lower optim.lr "
                                 "or set train.clip)",
                                 last_val, diverged_above);
                    status = stop_numbers(&s, s.step, "%s; this step is not saved", what);
                    break;
                }
                double score = sel < 0 ? last_val : ev.metric[sel];
                int improved = sel < 0 ? score < s.best_val : score > s.best_val;
                if (improved) s.best_val = score, s.best_step = s.step, bad_evals = 0;
                else bad_evals++;
                if (improved) save(&s, r->best, what, sizeof what);
                save(&s, r->last, what, sizeof what);
                if (js) write_val_event(js, t, s.step, &ev, sel_name, s.best_val, s.best_step);
            }
            write_csv_row(csv, r->log_path, t, s.step, &last_train, do_eval ? &ev : NULL, lr, grad_norm, tps, elapsed);
            if (js)
                fprintf(js,
                        "{\"event\":\"train\",\"step\":%ld,\"train_loss\":%.6f,\"lr\":%.4e,\"grad_norm\":%.4f,\"tokens_"
                        "per_s\":%.1f,\"elapsed_s\":%.2f}\n",
                        s.step, last_train, lr, grad_norm, tps, elapsed);
            double eta = timed_steps ? (steps - s.step) * (t_train / timed_steps) : 0;
            if (tty) {
                int w = 24, done = (int)(w * s.step / (steps ? steps : 1));
                fprintf(out, "\r%6ld/%ld [%.*s%*s] loss %.4f val %.4f lr %.2e %.0f tok/s ETA %ld:%02ld ", s.step, steps,
                        done, "########################", w - done, "", last_train, last_val, lr, tps, (long)eta / 60,
                        (long)eta % 60);
                if (do_eval) fputc('\n', out);
            } else {
                fprintf(out, "step %ld/%ld train %.4f%s", s.step, steps, last_train, do_eval ? "" : "\n");
                if (do_eval) {
                    fprintf(out, " val %.4f", last_val);
                    for (int k = 0; k < t->n_metrics; k++) fprintf(out, " %s %.4f", t->metric_names[k], ev.metric[k]);
                    fprintf(out, " (best %s%s%.4f at %ld)\n", sel < 0 ? "" : sel_name, sel < 0 ? "" : " ", s.best_val,
                            s.best_step);
                }
            }
            fflush(out);
            if (js) fflush(js);
            sum_loss = 0, n_loss = 0;
            if (do_eval && patience > 0 && bad_evals >= patience) {
                fprintf(out, "early stop: no improvement in %ld validations (best %s %.4f at step %ld)\n", bad_evals,
                        sel_name, s.best_val, s.best_step);
                early = 1;
                break;
            }
            if (out_of_time) {
                fprintf(out, "time limit: %.0f s reached at step %ld of %ld (train.time_limit)\n", time_limit, s.step,
                        steps);
                early = 2;
                break;
            }
        }
        if (t->sample && sample_every > 0 && s.step % sample_every == 0) t->sample(t, s.step, out);
    }
    // train.steps = 0: the initial model, validated and saved as step 0 (best and last): a run
    // can start from it (--resume), and another implementation can start from the very same
    // weights (tools/bench/torch_ref.py --start, which tools/bench/run uses by default).
    if (steps == 0 && s.step == 0 && status == 0) {
        ev = (tz_eval){0};
        t->evaluate(t, g, &ev);
        last_val = tz_eval_loss(&ev);
        s.best_val = sel < 0 ? last_val : ev.metric[sel], s.best_step = 0;
        if (!save(&s, r->best, what, sizeof what) || !save(&s, r->last, what, sizeof what))
            status = stop_numbers(&s, 0, "%s; the initial weights are not saved", what);
        // Logged like any validation: log.csv's row 0 is the curve's start, and a resumed run
        // appends its steps after it.
        write_csv_row(csv, r->log_path, t, 0, NULL, &ev, nn_schedule_lr(&sched, 0), 0, 0, tz_now() - t_start);
        if (js) write_val_event(js, t, 0, &ev, sel_name, s.best_val, 0);
    }
    int stop_sig = ranks > 1 ? agreed_stop : atomic_load(&stop_signal);
    if (stop_sig && status == 0) { // SIGINT / SIGTERM: keep what was learned, then exit 128 + signal
        if (s.saved_step != s.step && !save(&s, r->last, what, sizeof what)) {
            status = stop_numbers(&s, s.step, "%s; this step is not saved", what);
        } else {
            fprintf(out, "\ninterrupted (%s) at step %ld: checkpoint saved to %s (continue with: train --resume %s)\n",
                    stop_sig == SIGINT ? "SIGINT" : "SIGTERM", s.step, r->last, r->dir);
            status = 128 + stop_sig;
        }
    }
    char *extra = NULL;
    size_t extra_len = 0;
    FILE *xj = open_memstream(&extra, &extra_len);
    if (!xj) tz_fail("train: out of memory");
    if (status == 0 && steps > 0) {
        if (!strcmp(final, "best") && s.best_step >= 0 && s.best_step != s.step) {
            dist_barrier(); // rank 0 has written it
            tz_ckpt_load(r->best, P, NULL);
            fprintf(out, "final evaluation with the best weights: step %ld (%s)\n", s.best_step, r->best);
        }
        t->finish(t, g, out, js ? xj : NULL);
    }
    if (skipped) fprintf(xj, ",\"skipped_steps\":%ld", skipped);
    if (fclose(xj)) tz_fail("train: out of memory");
    if (!timed_steps && s.step > start_step) { // too short for a warm-up: every step counts
        t_train = t_all, timed_tokens = tokens_all, timed_steps = s.step - start_step;
    }
    double wall = tz_now() - t_start, tps = t_train > 0 ? timed_tokens / t_train : 0;
    double ms = timed_steps ? 1e3 * t_train / timed_steps : 0;
    if (js) {
        char nums[3][32];
        fprintf(js,
                "{\"event\":\"summary\",\"model\":\"%s\",\"params\":%zu,\"steps\":%ld,\"tokens_per_s\":%.1f,\"ms_per_"
                "step\":%.3f,"
                "\"ms_forward\":%.3f,\"ms_backward\":%.3f,\"ms_optimizer\":%.3f,\"final_train_loss\":%s,\"final_val_"
                "loss\":%s,"
                "\"best_val_%s\":%s,\"best_step\":%ld,\"wall_s\":%.2f,\"peak_rss_mb\":%.1f,\"threads\":%d,\"ranks\":%d,"
                "\"ms_allreduce\":%.3f,\"status\":%d,\"stop\":\"%s\"%s}\n",
                def->name, P->n, s.step, tps, ms, timed_steps ? 1e3 * t_fwd / timed_steps : 0,
                timed_steps ? 1e3 * t_bwd / timed_steps : 0, timed_steps ? 1e3 * t_opt / timed_steps : 0,
                json_number(nums[0], last_train), json_number(nums[1], last_val), sel_name,
                json_number(nums[2], s.best_val), s.best_step, wall, peak_rss_mb(), tz_get_threads(), ranks,
                s.step > start_step ? 1e3 * t_comm / (s.step - start_step) : 0, status,
                stop_name(status, stop_sig, early), extra);
    }
    free(extra);
    char train_text[32] = "-"; // no training step: no train loss
    if (isfinite(last_train)) snprintf(train_text, sizeof train_text, "%.4f", last_train);
    fprintf(out,
            "done: %ld steps, train %s, val %.4f (best %s%s%.4f at step %ld), %.0f tokens/s, %.2f ms/step, %.1f s, "
            "peak RSS %.0f MB\n",
            s.step, train_text, last_val, sel < 0 ? "" : sel_name, sel < 0 ? "" : " ", s.best_val, s.best_step, tps, ms,
            wall, peak_rss_mb());
    if (r->profile) {
        tz_profile_print(g, out, timed_steps);
        fprintf(out, "%-22s %9s %9s %9s %7.3f (clip, optimiser, schedule)\n", "optimiser", "", "", "",
                timed_steps ? 1e3 * t_opt / timed_steps : 0);
    }
    fprintf(out, "run: %s (log.csv, config.cfg, best.safetensors, last.safetensors)\n", r->dir);
    fprintf(out, "plot: gnuplot -e \"runs='%s'\" %s/tools/plot_loss.gp   (writes %s/loss.png", r->dir, TZ_SOURCE_ROOT,
            r->dir);
    if (!dist_rank() && system("command -v gnuplot >/dev/null 2>&1"))
        fprintf(out, "; gnuplot is not installed: sudo apt-get install gnuplot-nox");
    fprintf(out, ")\n");
    fclose(csv);
    tz_graph_free(g);
    nn_optim_free(&s.opt);
    return status;
}
