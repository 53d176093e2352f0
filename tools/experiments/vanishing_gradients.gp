# vanishing_gradients.gp: the plots of tools/experiments/vanishing_gradients.
#
# One cell kind: ||dL/dh_{T-k}|| against k (log scale) at step 0, early and late in training,
# three panels, one line per run (W_hh uniform or orthogonal; clipped at 1 or not):
#   gnuplot -e "file='rnn.dat'; cell='tanh RNN'; early=100; late=2000" tools/experiments/vanishing_gradients.gp
# The training curves of every run, one panel per cell kind:
#   gnuplot -e "curves='curves.dat'; late=2000" tools/experiments/vanishing_gradients.gp
# Optional: out='x.png' (default: the data file's name with .png).
#
# <cell>.dat: '#' comment lines, then "k" and, for each run in the order uniform/no clip,
# uniform/clip, orthogonal/no clip, orthogonal/clip, its norms at step 0, early and late
# (column 2 + 3 run + probe); NaN where the run had diverged before the probe.
# curves.dat: "step" and the loss of the 12 runs in the order rnn, lstm, gru x the same 4.
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("file") && !exists("curves")) { print "vanishing_gradients.gp: say which file, e.g. gnuplot -e \"file='rnn.dat'\" tools/experiments/vanishing_gradients.gp"; exit 1 }
src = exists("curves") ? curves : file
if (!exists("out")) out = (src[strlen(src)-3:] eq ".dat" ? src[1:strlen(src)-4] : src) . ".png"
if (!exists("cell")) cell = "recurrent"
if (!exists("early")) early = 100
if (!exists("late")) late = 2000

array names[4] = ["W_hh uniform, no clipping", "W_hh uniform, clipped at 1", "W_hh orthogonal, no clipping", "W_hh orthogonal, clipped at 1"]
array colors[4] = ["#2c5d9e", "#2c5d9e", "#c0392b", "#c0392b"]
array dashes[4] = [1, 2, 1, 2]

set terminal pngcairo size 1500,520 noenhanced
set output out
set grid
if (exists("curves")) {
    array cells[3] = ["tanh RNN (Elman)", "LSTM", "GRU"]
    set multiplot layout 1,3 title "training loss (SGD lr 3): what clipping at 1 changes"
    set xlabel "step"
    set ylabel "training loss (nats per character)"
    set yrange [1.4:8]
    set xrange [0:late]
    set xtics late / 4
    set key top right opaque box
    do for [c = 1:3] {
        set title cells[c]
        if (c == 2) { set key top right opaque box } else { unset key }   # the LSTM panel has room for it
        plot for [v = 1:4] src using 1:(column(1 + 4 * (c - 1) + v)) with lines lw 2 dt dashes[v] lc rgb colors[v] title names[v]
    }
    unset multiplot
} else {
    array when[3] = ["at initialisation (step 0)", sprintf("early (step %d)", early), sprintf("late (step %d)", late)]
    set multiplot layout 1,3 title cell . ": ||dL/dh_{T-k}|| for the loss L at the last step T (held-out windows, geometric mean)"
    set logscale y
    set format y "1e%T"
    set yrange [1e-46:1e2]   # 1e-45: below float's range (an underflow)
    set xlabel "k (steps back from T)"
    set ylabel "||dL/dh_{T-k}||"
    set key bottom left
    do for [p = 1:3] {
        set title when[p]
        plot for [v = 1:4] src using 1:(column(2 + 3 * (v - 1) + p - 1)) with lines lw 2 dt dashes[v] lc rgb colors[v] title names[v]
    }
    unset multiplot
}
print "vanishing_gradients.gp: wrote " . out
