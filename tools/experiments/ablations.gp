# ablations.gp: the mean validation curves of tools/experiments/ablations, one panel per table,
# from the <table>.dat files it writes (a header line "step" "row" ..., then step and one column
# of mean validation loss per row).
#
#   gnuplot -e "dir='docs/experiments/ablations'; names='heads depth residual positions warmup hybrid_cell optimiser'" tools/experiments/ablations.gp
#
# writes dir/curves.png unless out says otherwise. Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("dir")) { print "ablations.gp: say where the .dat files are, e.g. gnuplot -e \"dir='docs/experiments/ablations'\" tools/experiments/ablations.gp"; exit 1 }
if (!exists("names")) names = "heads depth residual positions warmup hybrid_cell optimiser"
if (!exists("out")) out = dir . "/curves.png"

set terminal pngcairo size 1500,1300 noenhanced
set output out
set grid
set key top right
set xlabel "step"
set ylabel "validation loss (nats per character)"
set key autotitle columnhead
set multiplot layout 3,3 title "ablations on tiny Shakespeare: mean validation loss of the seeds"
do for [t in names] {
    f = dir . "/" . t . ".dat"
    stats f using 1 nooutput
    set title t
    plot for [i = 2:STATS_columns] f using 1:i with linespoints lw 2 pt 7 ps 0.5
}
unset multiplot
print "ablations.gp: wrote " . out
