// profile.c: where a training step's time goes, per op (train --profile).
//
// Ops compute their output and then record themselves, so the time between two consecutive
// tz_op_record calls is the forward of the op recorded second (plus whatever model code ran in
// between, e.g. unrecorded no-grad work). Backward is timed around each node's backward, and the
// zeroing of the step's fresh gradients is its own row. The cost when off is one NULL check.
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROF_ROWS 64

typedef struct {
    const char *name;
    double fwd, bwd; // seconds
    long nodes; // recorded nodes
} prof_row;

struct tz_profile {
    prof_row row[PROF_ROWS];
    int n_rows;
    double last; // when the previous op was recorded (or the step began)
};

static prof_row *row_of(tz_profile *p, const char *name) {
    for (int i = 0; i < p->n_rows; i++)
        if (p->row[i].name == name || !strcmp(p->row[i].name, name)) return &p->row[i];
    if (p->n_rows == PROF_ROWS) return &p->row[PROF_ROWS - 1]; // "other" once the table is full
    prof_row *r = &p->row[p->n_rows++];
    r->name = p->n_rows == PROF_ROWS ? "(other)" : name;
    return r;
}

void tz_profile_start(tz_graph *g) {
    if (!g->prof && !(g->prof = calloc(1, sizeof *g->prof))) tz_fail("profile: out of memory");
    memset(g->prof, 0, sizeof *g->prof);
    g->prof->last = tz_now();
}

void tz_profile_stop(tz_graph *g) {
    free(g->prof);
    g->prof = NULL;
}

void tz_profile_mark(tz_graph *g) { g->prof->last = tz_now(); }

void tz_profile_forward(tz_graph *g, const char *name) {
    tz_profile *p = g->prof;
    double t = tz_now();
    prof_row *r = row_of(p, name);
    r->fwd += t - p->last;
    r->nodes++;
    p->last = t;
}

void tz_profile_backward(tz_graph *g, const char *name, double seconds) { row_of(g->prof, name)->bwd += seconds; }

static int by_total(const void *a, const void *b) {
    const prof_row *x = a, *y = b;
    double tx = x->fwd + x->bwd, ty = y->fwd + y->bwd;
    return (tx < ty) - (tx > ty);
}

void tz_profile_print(tz_graph *g, FILE *f, long steps) {
    tz_profile *p = g->prof;
    if (!p || steps <= 0) return;
    prof_row rows[PROF_ROWS];
    memcpy(rows, p->row, sizeof rows);
    qsort(rows, p->n_rows, sizeof *rows, by_total);
    double fwd = 0, bwd = 0;
    for (int i = 0; i < p->n_rows; i++) fwd += rows[i].fwd, bwd += rows[i].bwd;
    double all = fwd + bwd > 0 ? fwd + bwd : 1;
    fprintf(f, "# profile: ms per step over %ld steps (forward = time since the previous op was recorded)\n", steps);
    fprintf(f, "%-22s %9s %9s %9s %7s %7s\n", "op", "nodes", "forward", "backward", "total", "share");
    for (int i = 0; i < p->n_rows; i++) {
        const prof_row *r = &rows[i];
        fprintf(f, "%-22s %9.1f %9.3f %9.3f %7.3f %6.1f%%\n", r->name, (double)r->nodes / steps, 1e3 * r->fwd / steps,
                1e3 * r->bwd / steps, 1e3 * (r->fwd + r->bwd) / steps, 100 * (r->fwd + r->bwd) / all);
    }
    fprintf(f, "%-22s %9s %9.3f %9.3f %7.3f\n", "all", "", 1e3 * fwd / steps, 1e3 * bwd / steps,
            1e3 * (fwd + bwd) / steps);
}
