#!/usr/bin/env bash
# The exe wrapper of the `valgrind` test setup: `meson test -C BUILD --setup valgrind`, in a build
# dir configured with -Dnative=false (valgrind 3.19 cannot decode the AVX-512 instructions that
# -march=native emits on AVX-512 machines; the gemm's AVX-512 kernel is not chosen under valgrind,
# whose CPU has no AVX-512, so the AVX2 kernel is the one checked).
#
# A compiled test runs under memcheck with its children (Criterion runs each test in a child it
# execs; the CLI tests exec ./train): any error or definite leak in any of them fails the test.
# The children's errors do not reach the exit status, so every process writes its own log and the
# wrapper reads them all. A script (the bad-input catalogue) runs as it is, with TZ_VALGRIND set
# to the valgrind command, and runs the programs it tests under it.
set -u

if [ "${TZ_NATIVE:-false}" = true ]; then
    echo "valgrind setup: this build dir uses -march=native, which valgrind cannot run on AVX-512" \
         "machines; use one configured with -Dnative=false, e.g. meson setup build-vg -Dnative=false" >&2
    exit 1
fi
vg=(valgrind -q --error-exitcode=97 --leak-check=full --show-leak-kinds=definite
    --errors-for-leak-kinds=definite --trace-children=yes
    --trace-children-skip='*/tr,*/gnuplot,*/mount,*/umount,*/cmp,*/cp,*/rm,*/wc,*/touch,*/mkdir,*/dd,*/head,*/tail,*/cat,*/sed,*/grep,*/sleep,*/mkfifo,*/truncate,*/chmod,*/od,*/mktemp,*/timeout,*/df,*/du,*/ls,*/stat,*/find,*/sort,*/uniq,*/xargs,*/basename,*/dirname,*/readlink,*/realpath,*/id,*/seq,*/printf,*/echo,*/true,*/false,*/test,*/python3*')
# (the tools the tests call run untraced: their own leaks are not ours, and mount is setuid; the
# shell stays traced, so the programs it starts are checked)

if [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" != '177ELF' ]; then
    TZ_VALGRIND="${vg[*]}" exec "$@"
fi

export TZ_UNDER_VALGRIND=1 # tests whose timing valgrind's slowdown breaks skip themselves
logs=$(mktemp -d "${TMPDIR:-/tmp}/tz-valgrind.XXXXXX")
"${vg[@]}" --log-file="$logs/%p.log" "$@"
status=$?
found=0
for f in "$logs"/*.log; do
    [ -s "$f" ] || continue
    found=1
    echo "---- valgrind: $f" >&2
    cat "$f" >&2
done
rm -rf "$logs"
[ $found = 1 ] && [ $status = 0 ] && status=97
exit $status
