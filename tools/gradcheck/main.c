// gradcheck: compares every registered op, layer and model's autograd gradient with central
// finite differences in float64.
//   gradcheck --list | --all | NAME... [--eps E] [--tol T] [--elements|--directions] [-q]
#include "gradcheck.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: gradcheck (--list | --all | NAME...) [--eps E] [--tol T] [--elements | --directions] [-q]\n"
               "  --list        name every checkable op, layer and model\n"
               "  --all         check all of them; exit 1 if any fails\n"
               "  NAME...       check these (a name ending in '/' checks a group, e.g. op/)\n"
               "  --eps E       finite-difference step (default 1e-6)\n"
               "  --tol T       max relative error (default: the check's own, 1e-6)\n"
               "  --elements    every element of every input, even for big models\n"
               "  --directions  random directional derivatives (4), even for ops\n"
               "  -q            print failures and the summary only\n");
}

static int run(const tz_check *c, const tz_check_opts *o, int quiet) {
    tz_check_result r;
    tz_check_run(c, o, &r);
    if (!r.ok || !quiet) {
        printf("%-4s %-34s max_rel_err %.2e over %ld %s", r.ok ? "ok" : "FAIL", c->name, r.max_err, r.checked,
               (o->mode == TZ_CHECK_DIRECTIONS || (o->mode == TZ_CHECK_AUTO && c->directional)) ? "directions"
                                                                                                : "elements");
        if (!r.ok) {
            if (r.worst_param[0]) printf("  at %s[%ld]", r.worst_param, r.worst_offset);
            else printf("  at direction %ld", r.worst);
            printf(" numeric %.10g analytic %.10g", r.numeric, r.analytic);
        }
        printf("\n");
    }
    return r.ok;
}

int main(int argc, char **argv) {
    tz_check_opts o = tz_check_defaults();
    int all = 0, list = 0, quiet = 0, n_names = 0;
    const char **names = calloc(argc, sizeof *names);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--all")) all = 1;
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
    return failed ? 1 : 0;
}
