# zoo_side_by_side.gp: the zoo's validation curves on tiny Shakespeare from the val.dat that
# tools/experiments/zoo_side_by_side writes: against steps (left, up to the equal-steps point)
# and against wall-clock seconds (right, up to the equal-time point).
#
#   gnuplot -e "file='val.dat'; steps=1000; seconds=60" tools/experiments/zoo_side_by_side.gp   -> val.png
#
# val.dat: six blocks (mlp rnn lstm gru transformer hybrid) separated by two blank lines, each
# "step seconds val_loss" lines after '#' comment lines.
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("file")) { print "zoo_side_by_side.gp: say which file, e.g. gnuplot -e \"file='val.dat'\" tools/experiments/zoo_side_by_side.gp"; exit 1 }
if (!exists("out")) out = (file[strlen(file)-3:] eq ".dat" ? file[1:strlen(file)-4] : file) . ".png"
if (!exists("steps")) steps = 1000
if (!exists("seconds")) seconds = 60

array names[6] = ["MLP (Bengio 2003)", "RNN (Mikolov 2010)", "LSTM (Graves 2013)", "GRU (Cho 2014)", "Transformer (Vaswani 2017)", "hybrid (GRU + attention)"]
array colors[6] = ["#7f7f7f", "#2c5d9e", "#c0392b", "#27ae60", "#8e44ad", "#e67e22"]

set terminal pngcairo size 1300,540 noenhanced
set output out
set grid
set ylabel "validation loss (nats per character)"
set key top right
set multiplot layout 1,2 title "the zoo on tiny Shakespeare: each cfg of models/ as it is"
set title sprintf("at equal steps (to step %d)", steps)
set xlabel "step"
set xrange [0:steps]
plot for [i = 1:6] file index (i - 1) using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc rgb colors[i] title names[i]
set title sprintf("at equal wall-clock time (dashed: %g s; validation included)", seconds)
set xlabel "seconds"
set xrange [0:*]   # not [0:seconds]: on a busy machine a quick run's first validation can come after it
set arrow 1 from seconds, graph 0 to seconds, graph 1 nohead dt 2 lc rgb "#555555"
plot for [i = 1:6] file index (i - 1) using 2:3 with linespoints lw 2 pt 7 ps 0.5 lc rgb colors[i] title names[i]
unset multiplot
print "zoo_side_by_side.gp: wrote " . out
