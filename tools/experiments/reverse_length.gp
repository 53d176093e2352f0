# reverse_length.gp: exact match by string length of the RNN Encoder-Decoder and RNNsearch on
# reversed digit strings, from the accuracy.dat that tools/experiments/reverse_length writes:
# the synthetic analogue of Bahdanau et al. 2015, Figure 2 (score against sentence length).
# Solid lines: exact match; dashed: the share of each target's digits right until the first wrong
# one. The shaded band is the lengths seen in training.
#
#   gnuplot -e "file='accuracy.dat'" tools/experiments/reverse_length.gp              -> accuracy.png
#   gnuplot -e "file='accuracy.dat'; out='fig.png'; train_min=5; train_max=20" tools/experiments/reverse_length.gp
#
# accuracy.dat: '#' comment lines, then one line per length:
#   length  strings  rnnenc_exact  rnnsearch_exact  rnnenc_prefix  rnnsearch_prefix   (percent)
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("file")) { print "reverse_length.gp: say which file, e.g. gnuplot -e \"file='accuracy.dat'\" tools/experiments/reverse_length.gp"; exit 1 }
if (!exists("out")) out = (file[strlen(file)-3:] eq ".dat" ? file[1:strlen(file)-4] : file) . ".png"
if (!exists("train_min")) train_min = 5
if (!exists("train_max")) train_max = 20

set terminal pngcairo size 1100,540 noenhanced
set output out
set title sprintf("reversing digit strings: trained on lengths %d-%d, tested on held-out strings", train_min, train_max)
set xlabel "string length (digits)"
set ylabel "held-out test strings (%)"
set yrange [0:102]
set grid
set rmargin at screen 0.64     # the key to the right of the plot, placed by hand:
set key at screen 0.65, graph 1 left top vertical Left reverse samplen 3 spacing 1.3   # gnuplot underestimates its width
stats file using 1 nooutput
set xrange [STATS_min - 0.5:STATS_max + 0.5]
set object 1 rectangle from train_min - 0.5, graph 0 to train_max + 0.5, graph 1 behind fillcolor rgb "#e8e8e8" fillstyle solid noborder

plot file using 1:4 with linespoints lw 2 pt 7 ps 0.7 lc rgb "#c0392b" title "RNNsearch, exact", \
     file using 1:3 with linespoints lw 2 pt 5 ps 0.7 lc rgb "#2c5d9e" title "RNNenc, exact", \
     file using 1:6 with lines lw 1.5 dt 2 lc rgb "#c0392b" title "RNNsearch, right until the first error", \
     file using 1:5 with lines lw 1.5 dt 2 lc rgb "#2c5d9e" title "RNNenc, right until the first error", \
     NaN with boxes fillcolor rgb "#e8e8e8" fillstyle solid noborder title sprintf("training lengths (%d-%d)", train_min, train_max)
print "reverse_length.gp: wrote " . out
