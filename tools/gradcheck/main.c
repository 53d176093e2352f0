// gradcheck: compares autograd's gradients with central finite differences: every registered op,
// layer and model, or the model a cfg configures; in float64 (element by element), or with --f32
// in the float32 engine users train with (directional derivatives).
//   gradcheck --list | --all | NAME... | --cfg CFG [section.key=value ...] [--small] [options]
// This file is compiled twice: `gradcheck` (float64) and `gradcheck-f32` (float32), which
// `gradcheck --f32` runs in its place.
#include "gradcheck.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(
        f, "usage: gradcheck (--list | --all | NAME... | --cfg CFG [section.key=value ...] [--small] [--vocab N[,M]])\n"
           "                 [--f32] [--eps E] [--tol T] [--elements | --directions] [--samples N] [-q]\n"
           "  --list        name every checkable op, layer and model\n"
           "  --all         check all of them; exit 1 if any fails\n"
           "  NAME...       check these (a name ending in '/' checks a group, e.g. op/)\n"
           "  --cfg CFG     the model CFG configures (a cfg of models/, overrides as for ./train), every\n"
           "                parameter: at most --samples elements of each (default 4; all with --small)\n"
           "  --small       shrink its sizes (embed, hidden, layers, heads, d_model, d_ff, batch, block, ...)\n"
           "                to a few units and use a synthetic batch: seconds, every element checked\n"
           "  --vocab N[,M] vocabulary of the full-size model (pairs: source,target; default 65, pairs 1000)\n"
           "  --f32         the float32 engine users train with (SIMD gemm, packed weights, fast exp/tanh/\n"
           "                sigmoid/erf): directional derivatives, per parameter tensor, along the whole\n"
           "                gradient and at random, each at 9 steps h = c*max(|x|, 0.1 sqrt(n)),\n"
           "                c = 1e-1..1e-5, the best kept; tolerance 1e-2 (float32 rounding: see tools/README.md)\n"
           "  --eps E       finite-difference step (default 1e-6; float64)\n"
           "  --tol T       max relative error (default: the check's own, 1e-6; --cfg at full size 1e-4;\n"
           "                --f32 1e-2)\n"
           "  --elements    every element of every input, even for big models\n"
           "  --directions  random directional derivatives (4), even for ops\n"
           "  --samples N   elements mode: at most N elements per parameter tensor (0: all)\n"
           "  -q            print failures and the summary only\n"
           "Exit status: 0 all passed, 1 a check failed (or a bad cfg), 2 bad command line.\n");
}

#ifdef TZ_DOUBLE
// --f32: the float32 build of this program, next to this one, with the same arguments.
static int run_f32(int argc, char **argv) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 16);
    if (n <= 0) {
        fprintf(stderr, "gradcheck: --f32: cannot find this program's path: %s\n", strerror(errno));
        return 2;
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    strcpy(slash ? slash + 1 : self, "gradcheck-f32");
    argv[0] = self;
    (void)argc;
    execv(self, argv);
    fprintf(stderr, "gradcheck: --f32: cannot run %s: %s\n", self, strerror(errno));
    return 2;
}
#endif

static int run(const tz_check *c, const tz_check_opts *o, int quiet) {
    tz_check_result r;
    tz_check_run(c, o, &r);
    int directions = o->mode == TZ_CHECK_DIRECTIONS || (o->mode == TZ_CHECK_AUTO && c->directional);
#ifndef TZ_DOUBLE
    directions = 1;
#endif
    if (!r.ok || !quiet) {
        printf("%-4s %-34s max_rel_err %.2e over %ld %s", r.ok ? "ok" : "FAIL", c->name, r.max_err, r.checked,
               directions ? "directions" : "elements");
        if (!r.ok) {
            if (r.worst_param[0] && directions) printf("  at %s (direction)", r.worst_param);
            else if (directions && r.worst < 0) printf("  along the whole gradient");
            else if (r.worst_param[0]) printf("  at %s[%ld]", r.worst_param, r.worst_offset);
            else printf("  at direction %ld", r.worst);
            printf(" numeric %.10g analytic %.10g", r.numeric, r.analytic);
        }
        printf("\n");
    }
    return r.ok;
}

int main(int argc, char **argv) {
    tz_check_opts o = tz_check_defaults();
    int all = 0, list = 0, quiet = 0, n_names = 0, small = 0, n_over = 0, f32 = 0, samples_set = 0;
    const char *cfg_path = NULL, *vocab = NULL;
    const char **names = calloc(argc, sizeof *names);
    char **over = calloc(argc, sizeof *over);
    if (!names || !over) {
        fprintf(stderr, "gradcheck: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--all")) all = 1;
        else if (!strcmp(a, "--small")) small = 1;
        else if (!strcmp(a, "--f32")) f32 = 1;
        else if (!strcmp(a, "--cfg") && i + 1 < argc) cfg_path = argv[++i];
        else if (!strcmp(a, "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(a, "--samples") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || end == argv[i]) {
                fprintf(stderr, "gradcheck: --samples wants a count >= 0, got '%s'\n", argv[i]);
                return 2;
            }
            o.samples = v, samples_set = 1;
        } else if (a[0] != '-' && strchr(a, '=')) over[n_over++] = argv[i];
        else if (!strcmp(a, "--list")) list = 1;
        else if (!strcmp(a, "-q")) quiet = 1;
        else if (!strcmp(a, "--elements")) o.mode = TZ_CHECK_ELEMENTS;
        else if (!strcmp(a, "--directions")) o.mode = TZ_CHECK_DIRECTIONS;
        else if ((!strcmp(a, "--eps") || !strcmp(a, "--tol")) && i + 1 < argc) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (*end || !(v > 0)) {
                fprintf(stderr, "gradcheck: %s wants a positive number, got '%s'\n", a, argv[i]);
                return 2;
            }
            if (a[2] == 'e') o.eps = v;
            else o.tol = v;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "gradcheck: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else names[n_names++] = a;
    }
#ifdef TZ_DOUBLE
    if (f32) return run_f32(argc, argv);
#else
    (void)f32; // this is the float32 build already
#endif
    if (cfg_path) {
        if (all || list || n_names) {
            fprintf(stderr, "gradcheck: --cfg checks one model; it does not go with --all, --list or names\n");
            usage(stderr);
            return 2;
        }
        if (!samples_set) o.samples = small ? 0 : 4;
#ifdef TZ_DOUBLE
        // Full size: the loss is a mean over thousands of positions, so gradients are ~1e-3 and the
        // rounding of the forward (~1e-14 of L over 2 eps) is ~1e-8 of them: 1e-4, still far below
        // what a wrong backward gives (errors of the gradient's own size).
        if (!small && !(o.tol > 0)) o.tol = 1e-4;
#endif
        o.report = stdout;
        tz_check c;
        char name[512];
        tz_cfg_check_make(&c, name, sizeof name, cfg_path, over, n_over, small, vocab);
        int ok = run(&c, &o, quiet);
        tz_cfg_check_free(&c);
        free(names);
        free(over);
        return ok ? 0 : 1;
    }
    if (small || vocab || n_over) {
        fprintf(stderr, "gradcheck: --small, --vocab and overrides go with --cfg\n");
        return 2;
    }
    int n;
    const tz_check *checks = tz_checks(&n);
    if (list) {
        for (int i = 0; i < n; i++) printf("%s%s\n", checks[i].name, checks[i].directional ? "  (directional)" : "");
        return 0;
    }
    if (!all && !n_names) {
        usage(stderr);
        return 2;
    }
    int failed = 0, ran = 0;
    for (int i = 0; i < n; i++) {
        int want = all;
        for (int k = 0; k < n_names && !want; k++) {
            size_t len = strlen(names[k]);
            want = !strcmp(checks[i].name, names[k]) ||
                   (names[k][len - 1] == '/' && !strncmp(checks[i].name, names[k], len));
        }
        if (!want) continue;
        ran++;
        failed += !run(&checks[i], &o, quiet);
    }
    for (int k = 0; k < n_names; k++) {
        size_t len = strlen(names[k]);
        int found = 0;
        for (int i = 0; i < n && !found; i++)
            found = !strcmp(checks[i].name, names[k]) ||
                    (names[k][len - 1] == '/' && !strncmp(checks[i].name, names[k], len));
        if (!found) {
            fprintf(stderr, "gradcheck: no check named '%s' (see gradcheck --list)\n", names[k]);
            return 2;
        }
    }
    printf("gradcheck: %d passed, %d failed\n", ran - failed, failed);
    free(names);
    free(over);
    return failed ? 1 : 0;
}
