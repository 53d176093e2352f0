# scale.gp: tapezoo against PyTorch as the models grow (tools/bench/run --scale): left, the
# tokens/s ratio; right, the fraction of the machine's FMA peak each side reaches (tapezoo solid,
# torch dashed), both against the parameter count, one colour per family.
#
#   tools/bench/run --plot docs/bench/DAY-scale.jsonl     writes the .dat beside it, then runs:
#   gnuplot -e "dat='docs/bench/DAY-scale-scale.dat'; out='scale.png'" tools/bench/scale.gp
#   gnuplot -e "dat='...'; term='dumb'" tools/bench/scale.gp                  -> in the terminal
#
# The .dat holds one block per family (gnuplot's `index`), each opening with a title line, then
# `params ratio tapezoo_peak_frac torch_peak_frac` per size. Needs gnuplot (Debian:
# apt-get install gnuplot-nox); nothing else in the project does.
if (!exists("dat")) { print "scale.gp: say which data, e.g. gnuplot -e \"dat='bench-scale.dat'\" tools/bench/scale.gp"; exit 1 }
if (!exists("term")) term = "png"
if (!exists("out")) out = "scale.png"

stats dat using 1 nooutput
nfam = STATS_blocks

if (term eq "dumb") {
    set terminal dumb size 120,40
} else {
    set terminal pngcairo size 1200,520 noenhanced
    set output out
}
set logscale x 10
set format x "%.0s%c"
set xlabel "parameters"
set grid
set key noenhanced
set xrange [5e4:3e7]
set multiplot layout 1,2

set title "tokens/s, tapezoo / PyTorch"
set ylabel "ratio"
set yrange [0:*]
set key top right
set arrow 1 from graph 0, first 1.5 to graph 1, first 1.5 nohead dt 3 lc "gray40"  # the issue's 1.5x
set label 1 "1.5x" at graph 0.01, first 1.5 offset 0, 0.6 tc "gray40"
plot for [i=0:nfam-1] dat index i using 1:2 with linespoints lw 2 pt 7 lc i+1 title columnheader(1)
unset arrow 1
unset label 1

set title "fraction of the FMA peak (tapezoo solid, PyTorch dashed)"
set ylabel "achieved GFLOP/s / peak"
# [0:1] unless a row is above 1: model FLOPs, and the MLP's first layer does about a quarter of
# what the formula counts (shared pairs), so its line can pass the peak.
set yrange [0:*]
set autoscale ymax
set ytics add ("peak" 1)
set key top left
plot for [i=0:nfam-1] dat index i using 1:3 with linespoints lw 2 pt 7 lc i+1 title columnheader(1), \
     for [i=0:nfam-1] dat index i using 1:4 with linespoints lw 1 pt 6 dt 2 lc i+1 notitle

unset multiplot
if (term ne "dumb") print "scale.gp: wrote " . out
