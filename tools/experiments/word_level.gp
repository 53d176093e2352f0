# word_level.gp: the validation perplexity of tools/experiments/word_level's runs after each
# epoch, from the <name>.dat files it writes ("epoch val_ppl" lines after '#' comments).
#
#   gnuplot -e "dir='docs/experiments/word_level'; names='ptb_small wikitext2_lstm wikitext2_rnnlm'" tools/experiments/word_level.gp
#
# writes dir/val.png unless out says otherwise. The dashed line is Zaremba et al. 2014's
# validation perplexity of the small LSTM on PTB (120.7). Needs gnuplot (Debian: apt-get install gnuplot-nox).
if (!exists("dir")) { print "word_level.gp: say where the .dat files are, e.g. gnuplot -e \"dir='docs/experiments/word_level'\" tools/experiments/word_level.gp"; exit 1 }
if (!exists("names")) names = "ptb_small wikitext2_lstm wikitext2_rnnlm"
if (!exists("out")) out = dir . "/val.png"

set terminal pngcairo size 900,560 noenhanced
set output out
set grid
set logscale y
set key top right
set xlabel "epoch"
set ylabel "validation perplexity (log scale)"
set title "word-level language models: validation perplexity after each epoch"
set arrow 1 from graph 0, first 120.7 to graph 1, first 120.7 nohead dt 2 lc rgb "#555555"
set label 1 "Zaremba 2014 small LSTM, PTB: 120.7" at graph 0.02, first 112 tc rgb "#555555"
plot for [n in names] dir . "/" . n . ".dat" using 1:2 with linespoints lw 2 pt 7 ps 0.6 title n
print "word_level.gp: wrote " . out
