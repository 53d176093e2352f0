# plot_loss.gp: train and validation loss of one or more runs of ./train, from their log.csv.
#
#   gnuplot -e "runs='runs/lstm runs/gru'" tools/plot_loss.gp                  -> runs/lstm/loss.png
#   gnuplot -e "runs='runs/lstm'; out='lstm.png'" tools/plot_loss.gp
#   gnuplot -e "runs='runs/lstm'; term='dumb'" tools/plot_loss.gp              -> a plot in the terminal
#
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("runs")) { print "plot_loss.gp: say which runs, e.g. gnuplot -e \"runs='runs/lstm'\" tools/plot_loss.gp"; exit 1 }
if (!exists("term")) term = "png"
first = word(runs, 1)
if (!exists("out")) out = first . "/loss.png"

if (term eq "dumb") {
    set terminal dumb size 100,30
} else {
    set terminal pngcairo size 900,560 noenhanced
    set output out
}
set datafile separator ","
set key top right noenhanced
set xlabel "step"
set ylabel "loss (nats per token)"
set grid
set title "training (lines) and validation (points) loss" noenhanced

plot for [i=1:words(runs)] word(runs, i) . "/log.csv" using 1:2 every ::1 with lines lw 1.5 lc i title word(runs, i) . " train", \
     for [i=1:words(runs)] word(runs, i) . "/log.csv" using 1:($3 == $3 ? $3 : 1/0) every ::1 with linespoints pt 7 ps 0.8 lc i dt 2 title word(runs, i) . " val"
if (term ne "dumb") print "plot_loss.gp: wrote " . out
