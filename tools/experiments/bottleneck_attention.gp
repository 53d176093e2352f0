# bottleneck_attention.gp: test BLEU by source length of the RNN Encoder-Decoder and RNNsearch on
# English -> French, from the bleu_by_length.dat that tools/experiments/bottleneck_attention
# writes: the analogue of Bahdanau et al. 2015, Figure 2 (BLEU against sentence length). One
# point per bucket of source lengths (buckets may be uneven: sparse ones are merged), labelled
# with its range and its number of test pairs.
#
#   gnuplot -e "file='bleu_by_length.dat'" tools/experiments/bottleneck_attention.gp        -> bleu_by_length.png
#   gnuplot -e "file='bleu_by_length.dat'; out='fig.png'; note='2000 steps, greedy'" tools/experiments/bottleneck_attention.gp
#
# bleu_by_length.dat: '#' comment lines, then one line per bucket:
#   index  lo  hi  pairs  rnnenc_bleu  rnnsearch_bleu
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("file")) { print "bottleneck_attention.gp: say which file, e.g. gnuplot -e \"file='bleu_by_length.dat'\" tools/experiments/bottleneck_attention.gp"; exit 1 }
if (!exists("out")) out = (file[strlen(file)-3:] eq ".dat" ? file[1:strlen(file)-4] : file) . ".png"
if (!exists("note")) note = "greedy decoding"

set terminal pngcairo size 900,540 noenhanced
set output out
set title "English -> French (Tatoeba), test BLEU by source length (" . note . ")"
set xlabel "source sentence length (tokens)" offset 0,-1   # below the two-line tick labels
set bmargin 5
set ylabel "test BLEU"
set grid
set key top right
stats file using 1 nooutput
set xrange [STATS_min - 0.4:STATS_max + 0.4]
stats file using 5 nooutput
top = STATS_max
stats file using 6 nooutput
top = STATS_max > top ? STATS_max : top
set yrange [0:(top > 0 ? top * 1.25 : 1)]
set xtics scale 0

label(lo, hi, n) = sprintf("%d-%d\n(%d pairs)", lo, hi, n)
plot file using 1:6:xticlabels(label($2, $3, $4)) with linespoints lw 2 pt 7 ps 1 lc rgb "#c0392b" title "RNNsearch (Bahdanau 2015)", \
     file using 1:5 with linespoints lw 2 pt 5 ps 1 lc rgb "#2c5d9e" title "RNNenc (Cho 2014)"
print "bottleneck_attention.gp: wrote " . out
