// transformer.h: transformer encoder and decoder blocks (Vaswani et al. 2017, 3.1), batch-first.
//   post-LN (the paper): x = LN(x + Dropout(Sublayer(x)))
//   pre-LN (GPT-2; Xiong et al. 2020, better-behaved gradients at init): x = x + Dropout(Sublayer(LN(x)))
// A pre-LN stack wants one more LayerNorm after its last block; that belongs to the model.
// Names follow PyTorch's TransformerEncoderLayer/DecoderLayer by role:
//   encoder: "<name>.attn", "<name>.ffn", "<name>.ln1" (attention), "<name>.ln2" (FFN)
//   decoder: "<name>.self_attn", "<name>.cross_attn", "<name>.ffn", "<name>.ln1" (self),
//            "<name>.ln2" (cross; only with cross-attention), "<name>.ln3" (FFN)
#ifndef NN_TRANSFORMER_H
#define NN_TRANSFORMER_H

#include "attention.h"
#include "ffn.h"
#include "layers.h"

typedef struct nn_block_config {
    int d_model, heads, d_ff;
    int pre_ln; // 0: post-LN (Vaswani), 1: pre-LN (GPT-2)
    int residual; // 1: x + Sublayer(..) (the paper); 0: the sublayer's output alone (an ablation)
    nn_ffn_kind ffn; // NN_FFN_RELU (Vaswani), NN_FFN_GELU (GPT), NN_FFN_SWIGLU (LLaMA)
    int bias; // biases in the attention and FFN linears
    int rope; // rotary positions on the self-attention's q and k
    real dropout; // on each sublayer's output before the residual (Vaswani 5.4) and FFN hidden
    real attn_dropout; // on the attention weights
    real ln_eps;
} nn_block_config;
// PyTorch's TransformerEncoderLayer defaults: post-LN, ReLU, biases, dropout 0.1 (both), eps 1e-5.
nn_block_config nn_block_defaults(int d_model, int heads, int d_ff);

// The attention weights of a block's forward (arena, until tz_graph_reset), for plotting:
// self (B,H,Tq,Tk) and, in a decoder with cross-attention, cross (B,H,T,S).
typedef struct nn_block_attn {
    tz_tensor *self, *cross;
} nn_block_attn;

typedef struct nn_encoder_block {
    nn_mha attn;
    nn_ffn ffn;
    nn_layernorm ln1, ln2;
    nn_block_config c;
} nn_encoder_block;
void nn_encoder_block_init(nn_encoder_block *b, tz_params *P, const char *name, const nn_block_config *c, nn_init init,
                           tz_rng *r);
// x (B,T,C), lengths (B) or NULL (key padding) -> (B,T,C); attn (may be NULL) receives the weights.
tz_tensor *nn_encoder_block_forward(tz_graph *g, const nn_encoder_block *b, tz_tensor *x, const int *lengths,
                                    nn_block_attn *attn);

typedef struct nn_decoder_block {
    nn_mha self_attn, cross_attn; // cross_attn only when cross
    nn_ffn ffn;
    nn_layernorm ln1, ln2, ln3; // ln2 only when cross
    int cross;
    nn_block_config c;
    char name[48];
} nn_decoder_block;
// cross: 1 for an encoder-decoder's decoder, 0 for a decoder-only (GPT) stack.
void nn_decoder_block_init(nn_decoder_block *b, tz_params *P, const char *name, const nn_block_config *c, int cross,
                           nn_init init, tz_rng *r);
// x (B,T,C), mem (B,S,C) the encoder's output (NULL without cross), mem_lengths (B) or NULL
// -> (B,T,C). Self-attention is causal.
tz_tensor *nn_decoder_block_forward(tz_graph *g, const nn_decoder_block *b, tz_tensor *x, tz_tensor *mem,
                                    const int *mem_lengths, nn_block_attn *attn);
// Incremental decoding: x (B,t,C) the next t positions; self-attention over cache layer `layer`
// (and appends to it). Run the blocks of a stack in order with layer = 0, 1, ...; the positions
// of this step start at nn_kv_cache_len(c) read before the first block. Cross-attention (if any)
// is recomputed from mem.
tz_tensor *nn_decoder_block_step(tz_graph *g, const nn_decoder_block *b, tz_tensor *x, nn_kv_cache *c, int layer,
                                 tz_tensor *mem, const int *mem_lengths, nn_block_attn *attn);
// The same with the cross-attention's keys and values of the memory projected once
// (nn_mha_memory_project(g, &b->cross_attn, mem)), not at every step.
tz_tensor *nn_decoder_block_step_memory(tz_graph *g, const nn_decoder_block *b, tz_tensor *x, nn_kv_cache *c, int layer,
                                        const nn_mha_memory *mem, const int *mem_lengths, nn_block_attn *attn);

#endif
