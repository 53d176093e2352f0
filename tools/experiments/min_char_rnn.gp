# min_char_rnn.gp: the smoothed training loss of Karpathy's min-char-rnn, tapezoo's cfg against
# the numpy original, from the loss.dat that tools/experiments/min_char_rnn writes. The loss is
# the original's figure: nats summed over the 25 characters of an iteration, smoothed as
# 0.999 s + 0.001 loss.
#
#   gnuplot -e "file='loss.dat'" tools/experiments/min_char_rnn.gp                -> loss.png
#   gnuplot -e "file='loss.dat'; out='fig.png'" tools/experiments/min_char_rnn.gp
#
# loss.dat: '#' comment lines, then "iteration tapezoo numpy" lines.
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("file")) { print "min_char_rnn.gp: say which file, e.g. gnuplot -e \"file='loss.dat'\" tools/experiments/min_char_rnn.gp"; exit 1 }
if (!exists("out")) out = (file[strlen(file)-3:] eq ".dat" ? file[1:strlen(file)-4] : file) . ".png"

set terminal pngcairo size 900,520 noenhanced
set output out
set title "min-char-rnn on tiny Shakespeare: smoothed training loss (Elman 100, seq 25, Adagrad 0.1, clip +-5)"
set xlabel "iteration (25 characters each)"
set ylabel "smoothed loss (nats per 25 characters)"
set y2label "nats per character"
set grid
set key top right
set format x "%.0s%c"
set ytics nomirror
set y2tics
set link y2 via y / 25 inverse y * 25
plot file using 1:2 with lines lw 2 lc rgb "#c0392b" title "tapezoo, models/min_char_rnn.cfg", \
     file using 1:3 with lines lw 2 dt 2 lc rgb "#2c5d9e" title "numpy original (min-char-rnn.py)"
print "min_char_rnn.gp: wrote " . out
