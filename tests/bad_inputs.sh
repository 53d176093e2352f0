#!/usr/bin/env bash
# The bad-input catalogue: runs every case of tests/bad/*.cases and checks how the programs fail.
#
#   tests/bad_inputs.sh BAD_DIR MODELS_DIR TRAIN=path SAMPLE=path [TRANSLATE=path ...] [-k PATTERN]
#
# A case is one line `<exit status> | <substring of stderr> | <shell command>` (# starts a comment;
# the substring cannot contain '|', the command can). Each command runs under /bin/sh in a fresh
# empty directory with $TRAIN, $SAMPLE (and every other NAME=path argument as $NAME), $BAD (the
# catalogue's folder), $MODELS (the source models/), $DATA (a small corpus) and $RUN (a small
# valid run dir: config.cfg, last.safetensors, best.safetensors, log.csv; a fresh copy for every
# case, so a case may write into it) set. A case passes when
#   - it exits with the expected status within TZ_BAD_TIMEOUT seconds (20; a hang fails),
#     not killed by a signal (unless that status is the one expected),
#   - stderr contains the substring, and nothing from a sanitizer or valgrind,
#   - on exit 1 (an input rejected by tz_fail) the error is one line, the last of stderr, and has
#     the substring (warnings may come before it); on exit 2 (a usage error) the first line has
#     it and the usage may follow.
# Under valgrind (TZ_VALGRIND holds the valgrind command, set by the `valgrind` test setup) the
# programs run under it and any error it reports fails the case. -k runs only the cases whose
# command or file:line contains PATTERN. Prints one line per failing case (file:line, what was expected
# and what happened, the command), then the closing line "N passed, N failed"; exit status 0 if none failed.
set -u

bad=$1 models=$2
shift 2
bad=$(cd "$bad" && pwd) models=$(cd "$models" && pwd)
pattern=
progs=()
while [ $# -gt 0 ]; do
    case $1 in
    -k) pattern=$2; shift 2 ;;
    *=*) progs+=("$1"); shift ;;
    *) echo "bad_inputs: unexpected argument '$1'" >&2; exit 2 ;;
    esac
done
timeout=${TZ_BAD_TIMEOUT:-20}
# One thread: the cases test input handling, and a thread pool on a loaded machine is ~100x slower.
export TZ_NUM_THREADS=${TZ_NUM_THREADS:-1}
[ -n "${TZ_VALGRIND:-}" ] && timeout=${TZ_BAD_TIMEOUT:-300}

work=$(mktemp -d "${TMPDIR:-/tmp}/tz-bad.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/vg"
# A case may run a program as another user (setpriv, the read-only run dir): the wrappers and
# valgrind's log folder must be reachable by it.
chmod 755 "$work" "$work/bin" && chmod 1777 "$work/vg"

# The programs: as given, or through a script that runs them under valgrind, its report in vg/.
declare -A real
for p in "${progs[@]}"; do
    name=${p%%=*} path=${p#*=}
    [ -x "$path" ] || { echo "bad_inputs: $name=$path is not an executable" >&2; exit 2; }
    path=$(cd "$(dirname "$path")" && pwd)/${path##*/}
    real[$name]=$path
    if [ -n "${TZ_VALGRIND:-}" ]; then
        printf '#!/bin/sh\nexec %s --log-file=%s/vg/%%p.log %s "$@"\n' "$TZ_VALGRIND" "$work" "$path" >"$work/bin/$name"
        chmod 755 "$work/bin/$name"
        path=$work/bin/$name
    fi
    export "$name=$path"
done
: "${TRAIN:?bad_inputs: no TRAIN=path argument}"
export BAD=$bad MODELS=$models DATA=$work/data.txt RUN=$work/run

# $DATA: ~6 KB shaped like a play (a fixed LCG, so every run has the same corpus): speakers'
# lines such as "ROMEO:" (the zoo cfgs' sample prompt, a word of its own too), upper and lower
# case letters, and a last paragraph of words (not characters) that only the validation split has.
awk 'BEGIN {
    ns = split("ROMEO JULIET BENVOLIO MERCUTIO NURSE CAPULET FRIAR KING QUEEN DUKE", sp, " ")
    nw = split("the a and of to my thy thou art love night day sweet fair good what why how " \
               "with not but be is was have come go speak hear me you her his old new brave " \
               "joy quick zeal vex box lazy jumps fox", w, " ")
    x = 12345
    for (i = 0; i < 120; i++) {
        x = (x * 1103515245 + 12345) % 2147483648; print sp[int(x / 65536) % ns + 1] ":"
        s = ""
        for (j = 0; j < 9; j++) {
            x = (x * 1103515245 + 12345) % 2147483648; t = w[int(x / 65536) % nw + 1]
            s = s (j ? " " : toupper(substr(t, 1, 1)) substr(t, 2)) (j ? t : "")
        }
        print s (i % 3 ? "." : "?") "\n"
    }
    print "ALL:\nWherefore unkempt gargoyles yonder Bartholomew xylophones whistle.\n"
}' >"$DATA"
# $RUN: a tiny char GRU trained for a few steps (the real trainer, never under valgrind: it is not a case).
cat >"$work/tiny.cfg" <<EOF
[model]
type = gru
embed = 8
hidden = 16
[data]
path = $DATA
[train]
steps = 20
batch = 4
block = 16
eval_every = 10
log_every = 10
out_dir = $work/run.orig
EOF
if ! "${real[TRAIN]}" "$work/tiny.cfg" >"$work/run.log" 2>&1; then
    echo "bad_inputs: could not make the run dir:"; cat "$work/run.log"; echo "0 passed, 1 failed"; exit 1
fi
for f in config.cfg last.safetensors best.safetensors log.csv; do
    [ -f "$work/run.orig/$f" ] || { echo "bad_inputs: the run dir has no $f"; echo "0 passed, 1 failed"; exit 1; }
done

sanitizer='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: [A-Za-z]*Sanitizer'
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; printf '%s' "$s"; }

passed=0 failed=0
for file in "$bad"/*.cases; do
    [ -e "$file" ] || continue
    rel=tests/bad/${file##*/}
    n=0
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        case $(trim "$line") in ''|'#'*) continue ;; esac
        where=$rel:$n
        want=$(trim "${line%%|*}") rest=${line#*|}
        substr=$(trim "${rest%%|*}") cmd=$(trim "${rest#*|}")
        if [ "$rest" = "$line" ] || [ "${rest#*|}" = "$rest" ] || [ -z "$cmd" ] || ! [[ $want =~ ^[0-9]+$ ]]; then
            echo "$where: malformed case (want '<exit> | <substring> | <command>'): $line"
            failed=$((failed + 1)); continue
        fi
        [ -n "$pattern" ] && [[ "$where $cmd" != *"$pattern"* ]] && continue

        rm -rf "$RUN" "$work/case" "$work"/vg/*
        cp -R "$work/run.orig" "$RUN"
        mkdir "$work/case"
        (cd "$work/case" && exec timeout -k 5 "$timeout" /bin/sh -c "$cmd") >"$work/out" 2>"$work/err" </dev/null
        got=$?

        why=
        mapfile -t err <"$work/err" # (builtins only here: forks are what a case costs on a loaded machine)
        lines=${#err[@]} first=${err[0]:-} all=${err[*]:-}
        [ $lines = 0 ] && err=("")
        vg=("$work"/vg/*.log)
        [ -e "${vg[0]}" ] || vg=()
        if [ $got = 124 ] && [ "$want" != 124 ]; then why="hung (no exit within $timeout s)"
        elif [ $got -gt 128 ] && [ $got != "$want" ]; then why="killed by signal $((got - 128)) ($(kill -l $((got - 128)) 2>/dev/null))"
        elif [[ $all =~ $sanitizer ]]; then why="sanitizer report: ${BASH_REMATCH[0]}"
        elif [ ${#vg[@]} -gt 0 ] && [ -n "$(cat "${vg[@]}")" ]; then why="valgrind: $(grep -m1 -vhE '^==[0-9]+== *$' "${vg[@]}" | cut -c 1-200)"
        elif [ $got != "$want" ]; then why="exit $got, expected $want"
        elif [[ $all != *"$substr"* ]]; then why="stderr lacks '$substr'"
        elif [ "$want" = 1 ] && [[ ${err[lines - 1]} != *"$substr"* ]]; then why="the last line of stderr lacks '$substr' (the error must be one line, the last)"
        elif [ "$want" = 2 ] && [[ $first != *"$substr"* ]]; then why="the first line of stderr lacks '$substr'"
        fi
        if [ -z "$why" ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            echo "$where: expected exit $want and '$substr', got exit $got: $why; stderr: ${first:0:300}; command: $cmd"
        fi
    done <"$file"
done
echo "$passed passed, $failed failed"
[ $failed = 0 ] && [ $passed -gt 0 ]
