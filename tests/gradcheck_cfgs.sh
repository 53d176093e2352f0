#!/bin/sh
# gradcheck_cfgs.sh GRADCHECK MODELS_DIR: `gradcheck --cfg X.cfg --small` (float64, every element)
# and `--small --f32` (float32 kernels, directional) for every cfg of MODELS_DIR and for the
# transformer's knobs no shipped cfg turns, then a bad override, which must fail with the
# trainer's one line and exit 1. Exit 1 if any check fails.
set -u
gc=$1
models=$2
fail=0
n=0
# check ARGS...: gradcheck ARGS, its lines on success, FAIL and its lines indented otherwise.
check() {
    n=$((n + 1))
    if ! out=$("$gc" "$@" 2>&1); then
        echo "FAIL gradcheck $*:"
        echo "$out" | sed 's/^/    /'
        fail=1
    else
        echo "$out"
    fi
}
for c in "$models"/*.cfg; do
    check --cfg "$c" --small
    check --cfg "$c" --small --f32
done
# Knobs no shipped cfg turns (tools/experiments/ablations uses them), checked the same way; in
# float32 at d_model 16: at --small's 4, without the residual sum two LayerNorms over 4 features
# follow each other and float32's difference quotient drifts to ~1.5e-2 (float64 checks every
# element to 1e-7; at d_model 8 and up float32 is within 7e-3).
for extra in "model.residual=false" "model.residual=false model.pre_ln=false" \
    "model.positions=sinusoidal model.embed_scale=true"; do
    # shellcheck disable=SC2086
    check --cfg "$models/transformer.cfg" $extra --small
    # shellcheck disable=SC2086
    check --cfg "$models/transformer.cfg" $extra --small --f32 model.d_model=16
done
[ "$n" -ge 30 ] || { echo "gradcheck_cfgs: only $n checks: no cfgs in $models?"; fail=1; }
out=$("$gc" --cfg "$models/lstm.cfg" --small model.hiden=3 2>&1)
st=$?
if [ $st != 1 ] || ! echo "$out" | grep -q "hiden"; then
    echo "FAIL a bad override: want exit 1 and a line naming the key, got $st: $out"
    fail=1
fi
exit $fail
