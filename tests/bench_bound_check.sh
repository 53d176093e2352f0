#!/bin/sh
# tools/bench/run --scale's products-alone bound on a Transformer row, end to end (tapezoo only,
# tiny data): the row gets products_alone_ms and its share of our step, and the products it
# times are the model's: their weights plus the biases and norms are its dense parameters.
# Nothing here is timed against anything: the numbers only have to exist and be positive.
#   bench_bound_check.sh BUILD_DIR SOURCE_ROOT
set -eu
BUILD=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
awk 'BEGIN { x = 1; for (i = 0; i < 3000; i++) { x = (x * 1103515245 + 12345) % 2147483648;
             printf "%c", 97 + int(x / 65536) % 26; if (i % 40 == 39) print "" } }' > "$TMP/tiny.txt"
if ! python3 "$ROOT/tools/bench/run" --scale --models transformer --sizes 1 --no-torch --steps 21 \
    --set data.path="$TMP/tiny.txt" --build "$BUILD" --json "$TMP/b.jsonl" > "$TMP/out.txt" 2>&1; then
    cat "$TMP/out.txt"
    echo "FAIL: tools/bench/run --scale --models transformer --sizes 1 --no-torch"
    exit 1
fi
python3 - "$TMP/b.jsonl" "$TMP/out.txt" "$ROOT" <<'EOF'
import json, os, sys
sys.path.insert(0, os.path.join(sys.argv[3], "tools", "bench"))
import scale  # cfg_values: the smallest preset is transformer.cfg as it is
row = [json.loads(l) for l in open(sys.argv[1])][-1]
out = open(sys.argv[2]).read()
ok = True
def check(cond, what):
    global ok
    if not cond:
        print("FAIL:", what)
        ok = False
check(row.get("products_alone_ms", 0) > 0, f"no products_alone_ms in the row: {sorted(row)}")
check(0 < row.get("products_share", 0), f"no products_share: {row.get('products_share')}")
check("its dense products alone" in out, "no bound line in the output:\n" + out[-2000:])
# The timed products are the model's: (M, N, K, count) with M = batch x block, and their weights
# plus the biases and norms are the dense parameters of the FLOP formula.
shapes = row.get("products", [])
cfg = scale.cfg_values(os.path.join(sys.argv[3], "models", "transformer.cfg"))
L, d, ff, B, T = (int(cfg[k]) for k in ("model.layers", "model.d_model", "model.d_ff", "train.batch", "train.block"))
weights = sum(n * k * count for m, n, k, count in shapes)
others = L * (3 * d + d + ff + d + 4 * d) + 2 * d  # biases of the four products, two norms a layer, the final norm
check(weights + others == row.get("dense_params"),
      f"the timed products' weights {weights} + biases and norms {others} != dense params {row.get('dense_params')}")
check(shapes and all(m == B * T for m, n, k, count in shapes), f"M is not batch x block ({B} x {T}): {shapes}")
sys.exit(0 if ok else 1)
EOF
