// seq2seq.h: what the two recurrent translation models share (seq2seq_common.c): the GRU
// encoder (one direction, or bidirectional with each sentence reversed within its length), the
// decoder's GRU step, the readout (linear or maxout) and the decoding state of mt_encode/mt_step.
//   - seq2seq_rnnenc.c: Cho et al. 2014, RNN Encoder-Decoder (fixed summary c, no attention);
//   - seq2seq.c: Bahdanau et al. 2015, RNNsearch (bidirectional annotations, attention).
#ifndef TZ_SEQ2SEQ_H
#define TZ_SEQ2SEQ_H

#include "attention_step.h"
#include "context_linear.h"
#include "gru_step.h"
#include "model.h"
#include "nn.h"

typedef enum { S2S_ADDITIVE, S2S_DOT, S2S_GENERAL } s2s_score;

typedef struct s2s {
    int attention; // RNNsearch: annotations + attention; 0: RNNenc (fixed c)
    int E, H, D, C; // embeddings, encoder hidden (per direction), decoder hidden, context (2H or H)
    int Vs, Vt; // source and target vocabularies
    int cho; // GRU form: Cho 2014 (1) or cuDNN/PyTorch (0)
    real dropout; // on embeddings and on the readout's input (while training)
    int skip_padding; // forward: readout rows only where the target is real
    nn_embedding src_emb, tgt_emb;
    nn_recurrent enc; // bidirectional when attention
    nn_recurrent dec; // input [E y_{i-1}; c_i] (E + C), hidden D
    nn_linear init; // s_0 = tanh(W_s h<-_1) (RNNsearch) or tanh(V c) (RNNenc)
    s2s_score score;
    nn_bahdanau bahd;
    nn_luong luong;
    int maxout; // readout units after maxout (0: a plain linear readout)
    nn_linear pre; // maxout: [s; c; E y] -> 2 * maxout
    nn_linear out; // -> target vocabulary

    // Decoding state (mt_encode .. mt_step), tensors in the caller's graph.
    int rows, beam;
    int *row_len; // (rows) source length of each row
    int *row_idx; // (rows) scratch ids
    int cap_rows;
    tz_tensor *ann, *keys; // (rows,S,C), (rows,S,A) or NULL (RNNsearch)
    tz_tensor *ctx; // (rows,C) the fixed summary (RNNenc)
    tz_tensor *s; // (rows,D) the decoder state
} s2s;

// The [model] keys both models have (defaults: the benchmark config); their defs' family_keys.
extern const cfg_key s2s_keys[];

// Reads the shared keys and declares the embeddings, the encoder (bidirectional if attention),
// the decoder GRU, the initial-state layer and the readout. Fails naming the key on bad values.
void s2s_init(s2s *m, const cfg *c, int attention, int Vs, int Vt, tz_params *P, tz_rng *r);
void s2s_free(void *vm);

// src (B,S) ids, lengths (B) -> the annotations (B,S,C) (RNNsearch; NULL for RNNenc), the
// fixed summary (B,C) (RNNenc: the encoder's state at each sentence's last real word; NULL for
// RNNsearch), and s_0 (B,D).
void s2s_encode(tz_graph *g, s2s *m, const int *src, const int *len, int B, int S, tz_tensor **ann, tz_tensor **summary,
                tz_tensor **s0);
// One GRU step of the decoder: e (B,E), c (B,C), s (B,D) -> s' (B,D) (decoding: one row set at
// a time; forward projects the embeddings of all steps at once instead).
tz_tensor *s2s_gru_step(tz_graph *g, const s2s *m, tz_tensor *e, tz_tensor *c, tz_tensor *s);
// The readout of [s; c; E y] rows: feat (N, D + C + E) -> logits (N, Vt).
tz_tensor *s2s_readout(tz_graph *g, const s2s *m, tz_tensor *feat);
// x (B,T) batch-major -> the target embeddings (T,B,E), time-major (dropout applied).
tz_tensor *s2s_target_embed(tz_graph *g, const s2s *m, const int *x, int B, int T);
// Time-major (T,B,F) features -> their readout in batch-major order (B*T, Vt), row b*T + t, and
// b->targets = b->y, n_targets = B*T; with skip_padding only the rows whose target is not
// TZ_IGNORE (N, Vt), in the same order, and b->targets their targets (arena).
tz_tensor *s2s_readout_tm(tz_graph *g, const s2s *m, tz_tensor *feat, tz_batch *b);
// The same for [h; c; E y] with one c per sentence, h (T,B,D), c (B,C), ey (T,B,E): a linear
// readout computes c's part once per sentence (nn_context_linear); maxout, or dropout while
// training (each row its own mask), reads c repeated for every position, cT (T,B,C), as above.
tz_tensor *s2s_readout_context(tz_graph *g, const s2s *m, tz_tensor *h, tz_tensor *c, tz_tensor *cT, tz_tensor *ey,
                               tz_batch *b);
// The same for [s_i; c_i; E y_{i-1}] rows, sc (T,B,D+C) and ey (T,B,E): a linear readout
// computes E y's part once per distinct previous word of the batch (nn_context_linear).
tz_tensor *s2s_readout_prev(tz_graph *g, const s2s *m, tz_tensor *sc, tz_tensor *ey, tz_batch *b);

// Decoding: checks the sizes and keeps, for rows = B * beam, the source lengths per row; returns
// the row -> source index map (rows) for expanding per-source tensors.
const int *s2s_decode_rows(s2s *m, const int *len, int B, int S, int beam);
// A per-source tensor (B, ...) repeated for each of its beam rows -> (rows, ...).
tz_tensor *s2s_expand(tz_graph *g, s2s *m, tz_tensor *t, const int *row_src);
// The state each row continues: m->s reordered by parent (NULL: unchanged). Fails unless every
// parent is a row of the same source.
tz_tensor *s2s_parent_state(tz_graph *g, s2s *m, tz_tensor *s, const int *parent);

#endif
