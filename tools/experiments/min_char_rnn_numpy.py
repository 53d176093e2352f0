#!/usr/bin/env python3
"""min_char_rnn_numpy.py: Karpathy's min-char-rnn.py (2015, BSD License), the numpy original that
tools/experiments/min_char_rnn times tapezoo against, ported to Python 3.

    python3 tools/experiments/min_char_rnn_numpy.py DATA [--iters N] [--split F] [--seed S]
                                                         [--sample-every N] [--log FILE] [--json]

The model, the loss, the backward pass, the clipping and Adagrad are the original's line for
line (xrange -> range, print -> print()). What was added, none of it inside the timed loop's
arithmetic:
  - arguments instead of the hard-wired input.txt and the endless loop (--iters stops it);
  - --split F trains on the first F of the file, as the trainer's [data] split does, so both
    programs read the same characters;
  - the vocabulary is sorted (the original's list(set(data)) order changes from run to run with
    Python's string hashing) and np.random is seeded (--seed), so runs repeat;
  - --sample-every N (the original: 100) prints a 200-character sample every N iterations;
    0 turns it off, which is how the speed is measured (sampling is not training);
  - --log FILE writes "iter,loss,smooth_loss" every iteration; --json prints a summary line
    (iterations, seconds of the training loop, characters per second, the final smoothed loss)
    and a closing 200-character sample from the last state.
"""
import argparse
import json
import sys
import time

import numpy as np

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("data")
ap.add_argument("--iters", type=int, default=10000)
ap.add_argument("--split", type=float, default=1.0)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--sample-every", type=int, default=100)
ap.add_argument("--log")
ap.add_argument("--json", action="store_true")
args = ap.parse_args()
np.random.seed(args.seed)

# data I/O
data = open(args.data, 'r').read()  # should be simple plain text file
data = data[:int(len(data) * args.split)]
chars = sorted(set(data))
data_size, vocab_size = len(data), len(chars)
print('data has %d characters, %d unique.' % (data_size, vocab_size), file=sys.stderr)
char_to_ix = {ch: i for i, ch in enumerate(chars)}
ix_to_char = {i: ch for i, ch in enumerate(chars)}

# hyperparameters
hidden_size = 100  # size of hidden layer of neurons
seq_length = 25  # number of steps to unroll the RNN for
learning_rate = 1e-1

# model parameters
Wxh = np.random.randn(hidden_size, vocab_size) * 0.01  # input to hidden
Whh = np.random.randn(hidden_size, hidden_size) * 0.01  # hidden to hidden
Why = np.random.randn(vocab_size, hidden_size) * 0.01  # hidden to output
bh = np.zeros((hidden_size, 1))  # hidden bias
by = np.zeros((vocab_size, 1))  # output bias


def lossFun(inputs, targets, hprev):
    """
    inputs,targets are both list of integers.
    hprev is Hx1 array of initial hidden state
    returns the loss, gradients on model parameters, and last hidden state
    """
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    # forward pass
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))  # encode in 1-of-k representation
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)  # hidden state
        ys[t] = np.dot(Why, hs[t]) + by  # unnormalized log probabilities for next chars
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))  # probabilities for next chars
        loss += -np.log(ps[t][targets[t], 0])  # softmax (cross-entropy loss)
    # backward pass: compute gradients going backwards
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1  # backprop into y
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext  # backprop into h
        dhraw = (1 - hs[t] * hs[t]) * dh  # backprop through tanh nonlinearity
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
        np.clip(dparam, -5, 5, out=dparam)  # clip to mitigate exploding gradients
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def sample(h, seed_ix, n):
    """
    sample a sequence of integers from the model
    h is memory state, seed_ix is seed letter for first time step
    """
    x = np.zeros((vocab_size, 1))
    x[seed_ix] = 1
    ixes = []
    for t in range(n):
        h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
        y = np.dot(Why, h) + by
        p = np.exp(y) / np.sum(np.exp(y))
        ix = np.random.choice(range(vocab_size), p=p.ravel())
        x = np.zeros((vocab_size, 1))
        x[ix] = 1
        ixes.append(ix)
    return ixes


log = open(args.log, "w") if args.log else None
if log:
    log.write("iter,loss,smooth_loss\n")
n, p = 0, 0
mWxh, mWhh, mWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
mbh, mby = np.zeros_like(bh), np.zeros_like(by)  # memory variables for Adagrad
smooth_loss = -np.log(1.0 / vocab_size) * seq_length  # loss at iteration 0
t_train = 0.0  # seconds spent in the loop outside sampling and logging
while n < args.iters:
    t0 = time.perf_counter()
    # prepare inputs (we're sweeping from left to right in steps seq_length long)
    if p + seq_length + 1 >= len(data) or n == 0:
        hprev = np.zeros((hidden_size, 1))  # reset RNN memory
        p = 0  # go from start of data
    inputs = [char_to_ix[ch] for ch in data[p:p + seq_length]]
    targets = [char_to_ix[ch] for ch in data[p + 1:p + seq_length + 1]]

    # sample from the model now and then
    if args.sample_every and n % args.sample_every == 0:
        t_sample = time.perf_counter()
        sample_ix = sample(hprev, inputs[0], 200)
        txt = ''.join(ix_to_char[ix] for ix in sample_ix)
        print('----\n %s \n----' % (txt, ))
        t0 += time.perf_counter() - t_sample

    # forward seq_length characters through the net and fetch gradient
    loss, dWxh, dWhh, dWhy, dbh, dby, hprev = lossFun(inputs, targets, hprev)
    smooth_loss = smooth_loss * 0.999 + loss * 0.001
    if args.sample_every and n % args.sample_every == 0:
        print('iter %d, loss: %f' % (n, smooth_loss))  # print progress

    # perform parameter update with Adagrad
    for param, dparam, mem in zip([Wxh, Whh, Why, bh, by],
                                  [dWxh, dWhh, dWhy, dbh, dby],
                                  [mWxh, mWhh, mWhy, mbh, mby]):
        mem += dparam * dparam
        param += -learning_rate * dparam / np.sqrt(mem + 1e-8)  # adagrad update

    p += seq_length  # move data pointer
    n += 1  # iteration counter
    t_train += time.perf_counter() - t0
    if log:
        log.write("%d,%.6f,%.6f\n" % (n, loss, smooth_loss))

if log:
    log.close()
if args.json:
    txt = ''.join(ix_to_char[ix] for ix in sample(hprev, inputs[-1], 200))
    print(json.dumps({"iters": n, "train_s": round(t_train, 3), "chars_per_s": round(n * seq_length / t_train, 1),
                      "smooth_loss": round(float(smooth_loss), 4), "vocab": vocab_size, "sample": txt}))
