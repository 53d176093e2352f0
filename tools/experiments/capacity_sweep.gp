# capacity_sweep.gp: tools/experiments/capacity_sweep's results: the validation loss after the
# same wall-clock time against parameters (left, both families), and each size's validation loss
# against seconds (middle: the Transformer; right: the hybrid).
#
#   gnuplot -e "dir='docs/experiments/capacity_sweep'; seconds=100" tools/experiments/capacity_sweep.gp
#
# Reads dir/<family>-final.dat ("params val_loss tokens_per_s torch_tokens_per_s") and
# dir/<family>.dat (one block per size: a title line, then "seconds step val_loss"); writes dir/capacity.png unless
# out says otherwise. Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("dir")) { print "capacity_sweep.gp: say where the .dat files are, e.g. gnuplot -e \"dir='docs/experiments/capacity_sweep'\" tools/experiments/capacity_sweep.gp"; exit 1 }
if (!exists("out")) out = dir . "/capacity.png"
if (!exists("seconds")) seconds = 100
if (!exists("sizes")) sizes = 4

set terminal pngcairo size 1500,480 noenhanced
set output out
set grid
set key top right
set multiplot layout 1,3 title sprintf("capacity on tiny Shakespeare: each size trained %g s on 2 cores", seconds)
set title sprintf("validation loss after %g s", seconds)
set logscale x
set xlabel "parameters (log scale)"
set ylabel "validation loss (nats per character)"
plot dir . "/transformer-final.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#8e44ad" title "Transformer", \
     dir . "/hybrid-final.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#e67e22" title "hybrid"
unset logscale x
set xlabel "seconds"
do for [fam in "transformer hybrid"] {
    set title fam . ": validation loss during training, one line per size"
    f = dir . "/" . fam . ".dat"
    plot for [i = 0:sizes - 1] f index i using 1:3 with linespoints lw 2 pt 7 ps 0.5 title columnheader(1)
}
unset multiplot
print "capacity_sweep.gp: wrote " . out
