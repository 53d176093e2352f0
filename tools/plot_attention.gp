# plot_attention.gp: the alignment matrix that `./translate RUN --attention FILE "sentence"` wrote,
# as a heatmap in the style of Bahdanau et al. 2015, Figure 3: source words along x, target
# words down the side (first at the top), grey scale from black (weight 0) to white (weight 1).
#
#   ./translate runs/seq2seq --attention att.dat "he is a teacher ."
#   gnuplot -e "file='att.dat'" ../tools/plot_attention.gp                  -> att.png
#   gnuplot -e "file='att.dat'; out='fig.png'" ../tools/plot_attention.gp
#
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("file")) { print "plot_attention.gp: say which file, e.g. gnuplot -e \"file='att.dat'\" tools/plot_attention.gp"; exit 1 }
if (!exists("out")) out = (file[strlen(file)-3:] eq ".dat" ? file[1:strlen(file)-4] : file) . ".png"

# The matrix's size, for a square cell per weight.
stats file matrix rowheaders columnheaders nooutput
cols = STATS_size_x
rows = STATS_size_y
cell = 48
set terminal pngcairo size (cols * cell + 260), (rows * cell + 200) noenhanced font ",11"
set output out

set palette grey
set cbrange [0:1]
set cblabel "attention weight"
set size ratio -1
set xtics rotate by 60 right nomirror   # labels from the file's header line
set ytics nomirror                      # ... and from each row's first field
set tics scale 0
set xrange [-0.5:cols - 0.5]
set yrange [rows - 0.5:-0.5]            # the first target word at the top
set xlabel "source"
set ylabel "target"

plot file matrix rowheaders columnheaders using 1:2:3 with image notitle
print "plot_attention.gp: wrote " . out
