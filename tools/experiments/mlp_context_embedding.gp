# mlp_context_embedding.gp: training curves of Bengio's MLP without and with BatchNorm, from the
# curves.dat that tools/experiments/mlp_context_embedding writes: the smallest setting (context 2,
# embedding 2) and the largest (context 16, embedding 32).
#
#   gnuplot -e "file='curves.dat'" tools/experiments/mlp_context_embedding.gp              -> curves.png
#   gnuplot -e "file='curves.dat'; small='context 2, embedding 2'; large='context 16, embedding 32'" tools/experiments/mlp_context_embedding.gp
#
# curves.dat: '#' comment lines, then "step small small_bn large large_bn" (training loss, the
# mean of the 10 steps up to step). Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("file")) { print "mlp_context_embedding.gp: say which file, e.g. gnuplot -e \"file='curves.dat'\" tools/experiments/mlp_context_embedding.gp"; exit 1 }
if (!exists("out")) out = (file[strlen(file)-3:] eq ".dat" ? file[1:strlen(file)-4] : file) . ".png"
if (!exists("small")) small = "context 2, embedding 2"
if (!exists("large")) large = "context 16, embedding 32"

set terminal pngcairo size 1000,540 noenhanced
set output out
set title "Bengio's MLP on tiny Shakespeare: training loss (mean of 10 steps), without and with BatchNorm"
set xlabel "step"
set ylabel "training loss (nats per character)"
set grid
set key top right
plot file using 1:2 with lines lw 1.5 lc rgb "#2c5d9e" title small . ", no BatchNorm", \
     file using 1:3 with lines lw 1.5 lc rgb "#7fb3e6" title small . ", BatchNorm", \
     file using 1:4 with lines lw 1.5 lc rgb "#c0392b" title large . ", no BatchNorm", \
     file using 1:5 with lines lw 1.5 lc rgb "#f1948a" title large . ", BatchNorm"
print "mlp_context_embedding.gp: wrote " . out
