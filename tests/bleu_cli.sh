#!/bin/sh
# ./bleu, the command: its scores are train/bleu.c's on the values tests/test_bleu.c holds
# (computed independently: sacreBLEU's algorithm re-typed in Python), overall and by source
# length, from files and from standard input, as text and as JSON.
#   bleu_cli.sh BLEU_EXE
set -eu
BLEU=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "bleu_cli: $*"; exit 1; }
# Sentences 1-2: test_bleu.c's corpus h1/r1 (28.616603); 3-5: its h4/r4 (40.520415).
printf 'the cat is on the mat\na big dog ran\nc'"'"' est un professeur .\nje suis très fatigué .\nelle a mangé une pomme rouge .\n' >"$T/ref"
printf 'the cat sat on the mat\na dog\nil est un professeur .\nje suis fatigué .\nelle a mangé la pomme rouge .\n' >"$T/hyp"
# Sources of 11, 12, 3, 4 and 6 tokens.
printf 'a b c d e f g h i j k\na b c d e f g h i j k l\na b c\na  b\tc d\na b c d e f\n' >"$T/src"
head -n 2 "$T/ref" >"$T/ref12"; head -n 2 "$T/hyp" >"$T/hyp12"
tail -n 3 "$T/ref" >"$T/ref345"; tail -n 3 "$T/hyp" >"$T/hyp345"

got=$("$BLEU" "$T/ref12" "$T/hyp12" --json)
case $got in '{"bleu":28.616603,"sentences":2,'*) ;; *) fail "h1/r1: got $got, want bleu 28.616603" ;; esac
got=$("$BLEU" "$T/ref345" --json <"$T/hyp345")
case $got in '{"bleu":40.520415,"sentences":3,'*) ;; *) fail "h4/r4 on stdin: got $got, want bleu 40.520415" ;; esac
got=$("$BLEU" "$T/ref" "$T/ref" --json)
case $got in '{"bleu":100.000000,'*) ;; *) fail "a perfect corpus: got $got, want 100" ;; esac

# By length: 1-6 holds sentences 3-5, 7-10 none (listed, 0), 11+ (beyond the last bound) 1-2.
got=$("$BLEU" "$T/ref" "$T/hyp" --src "$T/src" --buckets 6,10 --json)
want='"by_len":{"1-6":{"bleu":40.520415,"sentences":3},"7-10":{"bleu":0.000000,"sentences":0},"11+":{"bleu":28.616603,"sentences":2}}}'
case $got in *"$want") ;; *) fail "by length: got $got, want it to end in $want" ;; esac
# Every source within the last bound: no "+" bucket; the pooled figure is the corpus's own.
got=$("$BLEU" "$T/ref" "$T/hyp" --src "$T/src" --buckets 10,12 --json)
case $got in *'"by_len":{"1-10":{"bleu":40.520415,"sentences":3},"11-12":{"bleu":28.616603,"sentences":2}}}') ;;
*) fail "two buckets: got $got" ;; esac
all=$("$BLEU" "$T/ref" "$T/hyp" --json)
case $got in "${all%\}}"*) ;; *) fail "the overall score moved with buckets: $all against $got" ;; esac
# The text form says the same.
"$BLEU" "$T/ref" "$T/hyp" --src "$T/src" --buckets 6,10 >"$T/text"
grep -q '^1-6 *BLEU  40.52 .* 3 sentences$' "$T/text" || fail "text form: $(cat "$T/text")"
grep -q '^11+ *BLEU  28.62 .* 2 sentences$' "$T/text" || fail "text form: $(cat "$T/text")"
echo "bleu_cli: ok"
