#!/bin/sh
# The PyTorch reference of the translation models computes the same function as ours: a tiny
# RNNsearch and RNN Encoder-Decoder train 5 steps on made-up pairs (written split included),
# then tools/bench/torch_mt_ref.py loads each checkpoint and must give the trainer's validation
# loss. Also checks the reference's BLEU against tests/test_bleu.c's values.
# Skips (77) without Debian's python3-torch.
#   torch_mt_check.sh TRAIN_EXE SOURCE_ROOT
set -eu
TRAIN=$1
ROOT=$2
. "$(dirname "$0")/torch_python.sh" # PY, or a skip without torch
REF="$ROOT/tools/bench/torch_mt_ref.py"
"$PY" "$REF" --bleu-selftest
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# 600 pairs over a small vocabulary (so most words pass min_count 2), 1-8 words a side, some
# sources with two translations (the split groups them).
awk 'BEGIN {
    split("the a cat dog sees likes big small red blue house tree runs eats we you they old new fast", en, " ");
    split("le la chat chien voit aime grand petit rouge bleu maison arbre court mange nous vous ils vieux neuf vite", fr, " ");
    x = 12345;
    for (i = 0; i < 600; i++) {
        x = (x * 1103515245 + 12345) % 2147483648; n = 1 + int(x / 65536) % 8;
        s = ""; t = "";
        for (j = 0; j < n; j++) {
            x = (x * 1103515245 + 12345) % 2147483648; k = 1 + int(x / 65536) % 20;
            s = s (j ? " " : "") en[k]; t = (j ? t " " : "") fr[k];
        }
        print s " .\t" t " ."; if (i % 7 == 0) print s " .\t" t " !";
    }
}' > "$TMP/pairs.tsv"
status=0
for m in seq2seq seq2seq_rnnenc; do
    extra=""
    [ $m = seq2seq ] && extra="model.attn_dim=16"
    set -- data.path="$TMP/pairs.tsv" data.write_split=true data.split=0.9 data.val_split=0.1 \
        model.embed=16 model.hidden=16 model.dec_hidden=16 $extra train.batch=16 train.steps=5 train.eval_every=5 \
        train.eval_tokens=0 train.threads=2
    (cd "$ROOT" && "$TRAIN" models/$m.cfg "$@" train.out_dir="$TMP/$m" --json) > "$TMP/$m.json" 2> "$TMP/$m.log" || {
        echo "FAIL: $m: the trainer failed:"; tail -3 "$TMP/$m.log"; exit 1; }
    (cd "$ROOT" && "$PY" "$REF" models/$m.cfg "$@" --check "$TMP/$m/last.safetensors") > "$TMP/$m.check" || {
        echo "FAIL: $m: torch_mt_ref.py --check failed"; exit 1; }
    "$PY" - "$TMP/$m.json" "$TMP/$m.check" "$m" <<'EOF' || status=1
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ours = next(e for e in ours if e.get("event") == "summary")["final_val_loss"]
ref = json.loads(open(sys.argv[2]).read())["val_loss"]
ok = abs(ours - ref) <= 2e-5
print(f"{sys.argv[3]}: tapezoo val loss {ours:.6f}, torch (tapezoo's weights) {ref:.6f}: {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
EOF
done
exit $status
