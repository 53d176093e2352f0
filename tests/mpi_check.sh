#!/bin/sh
# Data-parallel training (train/dist.h): with the same global batch and seed, 2 ranks compute
# what 1 process computes. Tiny models train 50 steps on made-up text (an LSTM LM, a
# Transformer LM) and on the synthetic reversal task (RNNsearch); every logged train and val
# loss must agree to float tolerance. Also: a checkpoint written by 2 ranks resumes on 1 (the
# carried state is gathered); rank 0 alone prints; a failure or a NaN on one rank stops both,
# with its message and status, never a hang; train.time_limit stops both at the same step. And
# tools/bench/mpi_figures runs, shrunk, and prints all its figures.
# Skips (77) when the build has no MPI (-Dmpi=disabled or none found) and under valgrind.
#   mpi_check.sh TRAIN_EXE SOURCE_ROOT MPI_FOUND MPIRUN
set -eu
TRAIN=$1
ROOT=$2
if [ "$3" != true ]; then
    echo "SKIP: built without MPI (meson setup -Dmpi=enabled; apt-get install openmpi-bin libopenmpi-dev)"
    exit 77
fi
if [ -n "${TZ_VALGRIND:-}" ]; then
    echo "SKIP: not under valgrind (MPI's start-up alone is minutes there)"
    exit 77
fi
MPIRUN=$4
# Root (CI's containers) must say so; two ranks on a 2-core machine others use too: no binding.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" # MPI's own allocations at exit are not ours
mpi() { timeout 120 "$MPIRUN" -np 2 --oversubscribe --bind-to none -x ASAN_OPTIONS -x UBSAN_OPTIONS "$@"; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
awk 'BEGIN {
    split("the cat sat on a mat and dog ran far away now", w, " "); x = 7;
    for (i = 0; i < 3000; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        printf "%s%s", w[1 + int(x / 65536) % 12], (i % 11 == 10 ? "\n" : " ");
    }
}' > "$TMP/text.txt"

# close A B: every train and val loss of log.csv A equals B's to 1e-4 (and as many rows).
close() {
    awk -F, 'NR == FNR { tr[FNR] = $2; va[FNR] = $3; n = FNR; next }
        FNR > 1 { m++; d = tr[FNR] - $2; if (d < 0) d = -d; if (d > worst) worst = d;
                  if (va[FNR] != "" || $3 != "") { d = va[FNR] - $3; if (d < 0) d = -d; if (d > worst) worst = d } }
        END { printf "%d rows, largest difference %g\n", m, worst; exit !(m == n - 1 && m > 0 && worst < 1e-4) }' "$1" "$2"
}

status=0
run_pair() { # run_pair NAME CFG ARGS...: 1 rank, then 2 ranks, same losses
    name=$1 cfg=$2
    shift 2
    (cd "$ROOT" && "$TRAIN" "$cfg" "$@" train.out_dir="$TMP/$name.1" --json > "$TMP/$name.1.json" 2> "$TMP/$name.1.err") ||
        { echo "FAIL: $name: 1 rank failed:"; tail -3 "$TMP/$name.1.err"; exit 1; }
    (cd "$ROOT" && mpi "$TRAIN" "$cfg" "$@" train.out_dir="$TMP/$name.2" --json > "$TMP/$name.2.json" 2> "$TMP/$name.2.err") ||
        { echo "FAIL: $name: 2 ranks failed:"; tail -5 "$TMP/$name.2.err"; exit 1; }
    printf '%s: 1 rank vs 2 ranks: ' "$name"
    close "$TMP/$name.1/log.csv" "$TMP/$name.2/log.csv" || { echo "FAIL: $name: the losses differ"; status=1; }
}
steps="train.steps=50 train.eval_every=25 train.log_every=1 train.threads=1"
LSTM="data.path=$TMP/text.txt model.embed=16 model.hidden=32 train.batch=7 train.block=16 $steps"
run_pair lstm models/lstm.cfg $LSTM
run_pair transformer models/transformer.cfg data.path="$TMP/text.txt" model.d_model=32 model.d_ff=64 model.layers=2 \
    model.heads=2 train.batch=6 train.block=16 $steps
run_pair rnnsearch models/reverse_rnnsearch.cfg model.embed=16 model.hidden=16 model.dec_hidden=16 model.attn_dim=16 \
    data.eval_size=200 train.eval_tokens=0 train.batch=9 train.clip=0 optim.name=sgd optim.lr=0.5 $steps

# Rank 0 alone prints: one summary line on stdout.
[ "$(grep -c '"event":"summary"' "$TMP/lstm.2.json")" = 1 ] || { echo "FAIL: more than rank 0 printed"; status=1; }
grep -q '"ranks":2' "$TMP/lstm.2.json" || { echo "FAIL: the summary does not say 2 ranks"; status=1; }

# A checkpoint does not depend on the ranks: 25 steps on 2 ranks, resumed to 50 on 1, gives the
# 1-rank run's losses (the LSTM's carried state, 7 streams split 4 + 3, gathered and split again).
(cd "$ROOT" && mpi "$TRAIN" models/lstm.cfg $LSTM train.steps=25 train.out_dir="$TMP/resume" --json > /dev/null 2>&1) &&
    (cd "$ROOT" && "$TRAIN" --resume "$TMP/resume" train.steps=50 --json > /dev/null 2> "$TMP/resume.err") ||
    { echo "FAIL: 2 ranks then --resume on 1 failed:"; tail -3 "$TMP/resume.err"; exit 1; }
printf 'lstm: 2 ranks to step 25, resumed on 1 rank: '
close "$TMP/lstm.1/log.csv" "$TMP/resume/log.csv" || { echo "FAIL: the resumed run differs"; status=1; }
# ... and the other way: 1 rank to step 25, resumed on 2.
(cd "$ROOT" && "$TRAIN" models/lstm.cfg $LSTM train.steps=25 train.out_dir="$TMP/resume2" --json > /dev/null 2>&1) &&
    (cd "$ROOT" && mpi "$TRAIN" --resume "$TMP/resume2" train.steps=50 --json > /dev/null 2> "$TMP/resume2.err") ||
    { echo "FAIL: 1 rank then --resume on 2 failed:"; tail -3 "$TMP/resume2.err"; exit 1; }
printf 'lstm: 1 rank to step 25, resumed on 2 ranks: '
close "$TMP/lstm.1/log.csv" "$TMP/resume2/log.csv" || { echo "FAIL: the resumed run differs"; status=1; }

# train.time_limit: each rank reads its own clock; all must stop at the same step (or one waits forever).
(cd "$ROOT" && mpi "$TRAIN" models/lstm.cfg $LSTM train.steps=100000000 train.time_limit=1 train.out_dir="$TMP/late" \
    --json > "$TMP/late.json" 2> "$TMP/late.err") && grep -q '"stop":"time_limit"' "$TMP/late.json" &&
    echo "time_limit: both ranks stopped at step $(grep -o '"steps":[0-9]*' "$TMP/late.json" | cut -d: -f2)" ||
    { echo "FAIL: time_limit on 2 ranks:"; tail -3 "$TMP/late.err"; status=1; }

# expect_stop NAME STATUS MESSAGE VAR=VALUE: a fault on rank 1 alone stops both ranks with
# STATUS and MESSAGE on stderr (timeout's 124 would be a hang).
expect_stop() {
    set +e
    (cd "$ROOT" && env "$4" "$MPIRUN" -np 2 --oversubscribe --bind-to none -x "${4%%=*}" -x ASAN_OPTIONS \
        timeout 60 "$TRAIN" models/lstm.cfg $LSTM train.out_dir="$TMP/$1" --json > /dev/null 2> "$TMP/$1.err")
    got=$?
    set -e
    if [ $got != "$2" ] || ! grep -q "$3" "$TMP/$1.err"; then
        echo "FAIL: $1: exit $got (want $2), stderr:"; head -5 "$TMP/$1.err"; status=1
    else echo "$1: both ranks stopped, exit $got: $(grep "$3" "$TMP/$1.err")"; fi
}
expect_stop fail 1 "rank 1: step 3: failing as TZ_TEST_FAIL_AT asks" TZ_TEST_FAIL_AT=3:1
expect_stop nan 3 "step 5: the loss is nan" TZ_TEST_NAN_AT=5:1

# tools/bench/mpi_figures (the README's MPI figures), shrunk to 3 steps on made-up text (with the
# cfgs' sample prompt "ROMEO:" among its words): every figure it prints is there.
awk 'BEGIN { split("the cat sat on a mat and dog ran far away ROMEO:", w, " ");
    for (i = 0; i < 4000; i++) printf "%s%s", w[(i * 7 + int(i / 12)) % 12 + 1], i % 9 == 8 ? "\n" : " " }' \
    > "$TMP/figures.txt"
if figs=$(STEPS=3 ALLREDUCE_ITERS=3 DATA="$TMP/figures.txt" MPI_BIND=none \
    timeout 240 "$ROOT/tools/bench/mpi_figures" "$(dirname "$TRAIN")" 1 2>"$TMP/figures.err"); then
    for m in lstm transformer; do
        echo "$figs" | grep -Eq "^$m run 1: 1 x 2 threads [0-9.]+ tok/s; 2 ranks x 1 thread [0-9.]+ tok/s, ms_allreduce [0-9.]+$" &&
            echo "$figs" | grep -q "^$m: .*allreduce of" ||
            { echo "FAIL: mpi_figures printed no figures for $m:"; echo "$figs"; status=1; }
    done
    [ $status != 0 ] || echo "mpi_figures: every figure printed"
else
    echo "FAIL: mpi_figures:"; tail -5 "$TMP/figures.err"; status=1
fi
exit $status
