// loop.c: the training loop (see loop.h).
#include "loop.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gemm.h"
#include "json.h"

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

typedef struct loop_state {
    tz_run *r;
    tz_task *t;
    tz_params *P;
    nn_optim opt;
    tz_graph g;
    long step, best_step;
    double best_val;
} loop_state;

// Saves the run's whole state to path: weights, optimiser, step, RNGs, the task's part.
static void save(loop_state *s, const char *path) {
    tz_ckpt_meta m = {.step = s->step, .best_val = s->best_val, .best_step = s->best_step, .cfg_text = s->r->cfg_text};
    snprintf(m.model, sizeof m.model, "%s", s->t->def->name);
    memcpy(m.drop_rng, s->g.rng.s, sizeof m.drop_rng);
    s->t->save_state(s->t, &m);
    tz_ckpt_save(path, s->P, &s->opt, &m);
}

int tz_train(tz_run *r, tz_task *t, tz_params *P) {
    const cfg *c = &r->c;
    FILE *out = r->out, *js = r->js;
    long steps = cfg_int(c, "train", "steps"), eval_every = cfg_int(c, "train", "eval_every");
    long log_every = cfg_int(c, "train", "log_every"), sample_every = cfg_int(c, "train", "sample_every");
    long patience = cfg_int(c, "train", "patience");
    double clip = cfg_float(c, "train", "clip"), clip_value = cfg_float(c, "train", "clip_value");
    uint64_t seed = (uint64_t)cfg_int(c, "train", "seed");
    const tz_model_def *def = t->def;
    loop_state s = {.r = r, .t = t, .P = P, .best_step = -1, .best_val = INFINITY};
    nn_optim_config oc = tz_optim_config(c);
    nn_optim_init(&s.opt, P, &oc);
    nn_schedule sched = tz_schedule_config(c);
    if (r->resume) {
        tz_ckpt_load(r->last, P, &s.opt);
        s.step = r->meta.step, s.best_val = r->meta.best_val, s.best_step = r->meta.best_step;
        t->resume(t, &r->meta, r->last, out);
    }
    FILE *log = fopen(r->log_path, r->resume ? "a" : "w");
    if (!log) tz_fail("cannot write %s (%s)", r->log_path, strerror(errno));
    if (!r->resume) {
        fprintf(log, "step,train_loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s");
        for (int k = 0; k < t->n_metrics; k++) fprintf(log, ",val_%s", t->metric_names[k]);
        fputc('\n', log);
    }

    // The configuration, resolved, as the run will use it.
    char *desc_text, *desc_json;
    size_t len;
    FILE *dt = open_memstream(&desc_text, &len), *dj = open_memstream(&desc_json, &len);
    if (!dt || !dj) tz_fail("train: out of memory");
    t->describe(t, dt, dj);
    if (fclose(dt) || fclose(dj)) tz_fail("train: out of memory");
    if (js) {
        fprintf(js, "{\"event\":\"config\",\"model\":\"%s\",\"params\":%zu%s,\"threads\":%d,\"gemm\":\"%s\",\"run_dir\":",
                def->name, P->n, desc_json, tz_get_threads(), tz_gemm_kernel_name());
        json_write_string(js, r->dir);
        fputs(",\"cfg\":", js);
        cfg_write_json(c, js);
        fputs("}\n", js);
        fflush(js);
    }
    fprintf(out, "# %s: %s\n%s\n", def->name, def->paper, r->cfg_text);
    fprintf(out, "# %zu parameters, %s, %d threads, gemm %s, run dir %s%s\n", P->n, desc_text, tz_get_threads(),
            tz_gemm_kernel_name(), r->dir, r->resume ? " (resumed)" : "");
    free(desc_text);
    free(desc_json);

    signal(SIGINT, on_sigint);
    tz_graph *g = &s.g;
    tz_graph_init(g, 1 << 22);
    g->training = 1;
    tz_rng_seed(&g->rng, seed + 2);
    if (r->resume && r->meta.has_drop_rng) memcpy(g->rng.s, r->meta.drop_rng, sizeof g->rng.s); // same dropout masks
    int tty = !r->json && isatty(fileno(stdout));
    double t_start = now(), t_train = 0, t_fwd = 0, t_bwd = 0, t_opt = 0, sum_loss = 0, last_train = NAN, last_val = NAN;
    double t_all = 0; // every step, for runs too short to have steps after the warm-up
    long tokens_all = 0, timed_steps = 0, timed_tokens = 0, n_loss = 0, bad_evals = 0, start_step = s.step;
    const int warmup = 20; // steps excluded from the speed figures (page faults, arena growth)
    double grad_norm = 0;
    int status = 0;
    tz_eval ev = {0};
    while (s.step < steps && !interrupted) {
        tz_batch b;
        t->next(t, &b);
        if (r->profile && s.step - start_step == warmup) tz_profile_start(g);
        double t0 = now();
        tz_params_zero_grad(P);
        tz_graph_reset(g); // after the zeroing: --profile counts from here
        tz_tensor *logits = def->forward(g, t->model, &b);
        tz_tensor *loss = tz_cross_entropy(g, logits, b.targets, TZ_IGNORE);
        double t1 = now();
        tz_backward(g, loss);
        double t2 = now();
        double lr = nn_schedule_lr(&sched, s.step);
        if (clip_value > 0) nn_clip_grad_value(P, clip_value);
        grad_norm = nn_clip_grad_norm(P, clip > 0 ? clip : INFINITY);
        double l = loss->data[0];
        if (!isfinite(l) || !isfinite(grad_norm)) {
            fprintf(stderr, "train: step %ld: the loss is %g (gradient norm %g): stopping. The last good checkpoint is %s%s\n",
                    s.step, l, grad_norm, r->last, access(r->last, F_OK) ? " (none yet)" : "");
            status = 1;
            break;
        }
        nn_optim_step(&s.opt, P, lr);
        double t3 = now();
        s.step++;
        long n_targets = t->n_targets ? t->n_targets(t, &b) : b.n_targets;
        t_all += t3 - t0, tokens_all += n_targets;
        if (s.step - start_step > warmup) {
            t_fwd += t1 - t0, t_bwd += t2 - t1, t_opt += t3 - t2, t_train += t3 - t0;
            timed_steps++, timed_tokens += n_targets;
        }
        sum_loss += l, n_loss++;
        int do_eval = s.step % eval_every == 0 || s.step == steps;
        if (s.step % log_every == 0 || do_eval) {
            double tps = t_train > 0 ? timed_tokens / t_train : 0, elapsed = now() - t_start;
            last_train = sum_loss / n_loss;
            if (do_eval) {
                ev = (tz_eval){0};
                t->evaluate(t, g, &ev);
                last_val = ev.count ? ev.sum_loss / ev.count : NAN;
                int improved = last_val < s.best_val;
                if (improved) s.best_val = last_val, s.best_step = s.step, bad_evals = 0;
                else bad_evals++;
                if (improved) save(&s, r->best);
                save(&s, r->last);
                if (js) {
                    fprintf(js, "{\"event\":\"val\",\"step\":%ld,\"val_loss\":%.6f", s.step, last_val);
                    for (int k = 0; k < t->n_metrics; k++) fprintf(js, ",\"val_%s\":%.6f", t->metric_names[k], ev.metric[k]);
                    fprintf(js, ",\"best_val_loss\":%.6f,\"best_step\":%ld}\n", s.best_val, s.best_step);
                }
            }
            char val[32] = "";
            if (do_eval) snprintf(val, sizeof val, "%.6f", last_val);
            fprintf(log, "%ld,%.6f,%s,%.3e,%.4f,%.1f,%.2f", s.step, last_train, val, lr, grad_norm, tps, elapsed);
            for (int k = 0; k < t->n_metrics; k++) do_eval ? fprintf(log, ",%.6f", ev.metric[k]) : fputc(',', log);
            fputc('\n', log);
            fflush(log);
            if (js) fprintf(js, "{\"event\":\"train\",\"step\":%ld,\"train_loss\":%.6f,\"lr\":%.4e,\"grad_norm\":%.4f,\"tokens_per_s\":%.1f,\"elapsed_s\":%.2f}\n",
                            s.step, last_train, lr, grad_norm, tps, elapsed);
            double eta = timed_steps ? (steps - s.step) * (t_train / timed_steps) : 0;
            if (tty) {
                int w = 24, done = (int)(w * s.step / (steps ? steps : 1));
                fprintf(out, "\r%6ld/%ld [%.*s%*s] loss %.4f val %.4f lr %.2e %.0f tok/s ETA %ld:%02ld ", s.step, steps, done,
                        "########################", w - done, "", last_train, last_val, lr, tps, (long)eta / 60, (long)eta % 60);
                if (do_eval) fputc('\n', out);
            } else {
                fprintf(out, "step %ld/%ld train %.4f%s", s.step, steps, last_train, do_eval ? "" : "\n");
                if (do_eval) {
                    fprintf(out, " val %.4f", last_val);
                    for (int k = 0; k < t->n_metrics; k++) fprintf(out, " %s %.4f", t->metric_names[k], ev.metric[k]);
                    fprintf(out, " (best %.4f at %ld)\n", s.best_val, s.best_step);
                }
            }
            fflush(out);
            if (js) fflush(js);
            sum_loss = 0, n_loss = 0;
            if (do_eval && patience > 0 && bad_evals >= patience) {
                fprintf(out, "early stop: no improvement in %ld validations (best %.4f at step %ld)\n", bad_evals, s.best_val, s.best_step);
                break;
            }
        }
        if (t->sample && sample_every > 0 && s.step % sample_every == 0) t->sample(t, s.step, out);
    }
    if (interrupted) { // Ctrl-C: keep what was learned
        save(&s, r->last);
        fprintf(out, "\ninterrupted at step %ld: checkpoint saved to %s (continue with: train --resume %s)\n", s.step, r->last, r->dir);
    }
    char *extra = NULL;
    size_t extra_len = 0;
    FILE *xj = open_memstream(&extra, &extra_len);
    if (!xj) tz_fail("train: out of memory");
    if (status == 0 && !interrupted && steps > 0) t->finish(t, g, out, js ? xj : NULL);
    if (fclose(xj)) tz_fail("train: out of memory");
    if (!timed_steps && s.step > start_step) { // too short for a warm-up: every step counts
        t_train = t_all, timed_tokens = tokens_all, timed_steps = s.step - start_step;
    }
    double wall = now() - t_start, tps = t_train > 0 ? timed_tokens / t_train : 0;
    double ms = timed_steps ? 1e3 * t_train / timed_steps : 0;
    if (js) {
        fprintf(js, "{\"event\":\"summary\",\"model\":\"%s\",\"params\":%zu,\"steps\":%ld,\"tokens_per_s\":%.1f,\"ms_per_step\":%.3f,"
                    "\"ms_forward\":%.3f,\"ms_backward\":%.3f,\"ms_optimizer\":%.3f,\"final_train_loss\":%.6f,\"final_val_loss\":%.6f,"
                    "\"best_val_loss\":%.6f,\"best_step\":%ld,\"wall_s\":%.2f,\"peak_rss_mb\":%.1f,\"threads\":%d,\"status\":%d%s}\n",
                def->name, P->n, s.step, tps, ms, timed_steps ? 1e3 * t_fwd / timed_steps : 0, timed_steps ? 1e3 * t_bwd / timed_steps : 0,
                timed_steps ? 1e3 * t_opt / timed_steps : 0, last_train, last_val, s.best_val, s.best_step, wall, peak_rss_mb(),
                tz_get_threads(), status, extra);
    }
    free(extra);
    fprintf(out, "done: %ld steps, train %.4f, val %.4f (best %.4f at step %ld), %.0f tokens/s, %.2f ms/step, %.1f s, peak RSS %.0f MB\n",
            s.step, last_train, last_val, s.best_val, s.best_step, tps, ms, wall, peak_rss_mb());
    if (r->profile) {
        tz_profile_print(g, out, timed_steps);
        fprintf(out, "%-22s %9s %9s %9s %7.3f (clip, optimiser, schedule)\n", "optimiser", "", "", "",
                timed_steps ? 1e3 * t_opt / timed_steps : 0);
    }
    fprintf(out, "run: %s (log.csv, config.cfg, best.safetensors, last.safetensors)\n", r->dir);
    fprintf(out, "plot: gnuplot -e \"runs='%s'\" %s/tools/plot_loss.gp   (writes %s/loss.png", r->dir, TZ_SOURCE_ROOT, r->dir);
    if (system("command -v gnuplot >/dev/null 2>&1")) fprintf(out, "; gnuplot is not installed: sudo apt-get install gnuplot-nox");
    fprintf(out, ")\n");
    fclose(log);
    tz_graph_free(g);
    nn_optim_free(&s.opt);
    return status;
}
