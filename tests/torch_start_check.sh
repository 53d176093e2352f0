#!/bin/sh
# The PyTorch reference of the language models, started from our initial weights, trains as ours
# does: each model type, tiny, saves its initial weights (train.steps=0), trains 8 steps; then
# tools/bench/torch_ref.py --start loads those weights, draws our batches (random windows from
# the trainer's xoshiro256** stream, or the contiguous streams) and trains 8 steps: the two
# validation losses must agree to float rounding (what tools/bench/run's loss columns rely on).
# Also: --check on the trained checkpoint gives the trainer's validation loss.
# Skips (77) without Debian's python3-torch.
#   torch_start_check.sh TRAIN_EXE SOURCE_ROOT
set -eu
TRAIN=$1
ROOT=$2
. "$(dirname "$0")/torch_python.sh" # PY, or a skip without torch
REF="$ROOT/tools/bench/torch_ref.py"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# ~12 KB of made-up sentences: enough windows that a batch drawn from the wrong place shows.
awk 'BEGIN {
    split("the cat dog sat ran on a mat tree king sang to queen of old new", w, " ");
    x = 12345;
    for (i = 0; i < 500; i++) {
        s = "";
        for (j = 0; j < 5; j++) { x = (x * 1103515245 + 12345) % 2147483648; s = s (j ? " " : "") w[1 + int(x / 65536) % 16]; }
        print s ".";
    }
}' > "$TMP/tiny.txt"
status=0
must() { # must WHAT OUT COMMAND...: runs COMMAND in ROOT (stdout to OUT.out, stderr to OUT.err), or fails the test
    what=$1 out=$2
    shift 2
    (cd "$ROOT" && "$@") > "$out.out" 2> "$out.err" || { echo "FAIL: $what failed:"; tail -3 "$out.err"; exit 1; }
}
check() { # check NAME CFG OVERRIDES...
    name=$1 cfg=$2
    shift 2
    set -- data.path="$TMP/tiny.txt" train.steps=8 train.eval_every=8 train.eval_tokens=0 train.threads=2 "$@"
    must "$name: train.steps=0" "$TMP/$name.0" "$TRAIN" models/$cfg.cfg "$@" train.steps=0 train.out_dir="$TMP/$name.0" --json
    must "$name: the trainer" "$TMP/$name" "$TRAIN" models/$cfg.cfg "$@" train.out_dir="$TMP/$name" --json
    must "$name: torch_ref.py --start" "$TMP/$name.ref" "$PY" "$REF" models/$cfg.cfg "$@" --start "$TMP/$name.0/last.safetensors"
    must "$name: torch_ref.py --check" "$TMP/$name.check" "$PY" "$REF" models/$cfg.cfg "$@" --check "$TMP/$name/last.safetensors"
    "$PY" - "$TMP/$name.out" "$TMP/$name.ref.out" "$TMP/$name.check.out" "$TMP/$name.0.out" "$name" <<'EOF' || status=1
import json, sys
def summary(path):
    return next(e for e in map(json.loads, (l for l in open(path) if l.startswith("{"))) if e.get("event") in ("summary", "check"))
ours, ref, chk, init = (summary(p) for p in sys.argv[1:5])
name = sys.argv[5]
a, b, c, i = ours["final_val_loss"], ref["final_val_loss"], chk["val_loss"], init["final_val_loss"]
ok = abs(a - b) <= 1e-4 and abs(a - c) <= 2e-5 and ref.get("same_start") and ours["steps"] == ref["steps"] == 8
ok = ok and abs(a - i) > 1e-3  # the 8 steps moved the loss: equal losses are not two untrained models
print(f"{name}: val loss from the same start, after 8 steps: tapezoo {a:.6f}, torch {b:.6f}; "
      f"torch on our weights {c:.6f} (initial {i:.6f}): {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
EOF
}
check mlp mlp model.context=4 model.embed=8 model.hidden=16 train.batch=8
check rnn rnn model.embed=8 model.hidden=16 train.batch=4 train.block=16
check lstm lstm model.embed=8 model.hidden=16 model.peephole=false train.batch=4 train.block=16
check gru gru model.embed=8 model.hidden=16 model.form=cudnn train.batch=4 train.block=16
check transformer transformer model.d_model=16 model.heads=2 model.layers=2 model.d_ff=32 train.batch=4 train.block=16
check hybrid hybrid model.embed=8 model.hidden=16 model.heads=2 train.batch=4 train.block=16
# A --start that is not this cfg's checkpoint: one line naming the file, exit 2, no traceback.
echo garbage > "$TMP/garbage.safetensors"
for bad in "$TMP/missing.safetensors" "$TMP/garbage.safetensors" "$TMP/lstm.0/last.safetensors"; do
    if (cd "$ROOT" && "$PY" "$REF" models/transformer.cfg data.path="$TMP/tiny.txt" model.d_model=16 model.heads=2 \
        model.layers=2 model.d_ff=32 train.steps=1 --start "$bad") > "$TMP/bad.out" 2> "$TMP/bad.err"; then
        echo "FAIL: --start $bad was accepted"; status=1
    elif [ "$(wc -l < "$TMP/bad.err")" -ne 1 ] || ! grep -q "^torch_ref: $bad: " "$TMP/bad.err"; then
        echo "FAIL: --start $bad: not one line naming the file:"; cat "$TMP/bad.err"; status=1
    else
        echo "bad --start refused: $(cat "$TMP/bad.err")"
    fi
done
exit $status
