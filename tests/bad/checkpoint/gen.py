#!/usr/bin/env python3
# Makes the damaged checkpoints of tests/bad/checkpoint.cases from rnn_small.safetensors, a valid
# checkpoint saved by ./train (an RNN LM: embed 4, hidden 4, 1 layer, 11 tokens, sgd, 4 steps).
# Each file differs from it in one thing. Run from this folder: python3 gen.py
import json
import struct

base = open('rnn_small.safetensors', 'rb').read()
n = struct.unpack('<Q', base[:8])[0]
header, data = base[8:8 + n].decode(), base[8 + n:]


def write(name, text, payload=data):
    raw = text.encode()
    raw += b' ' * (-len(raw) % 8)
    open(name + '.safetensors', 'wb').write(struct.pack('<Q', len(raw)) + raw + payload)


def edited(name, change):  # change(dict) edits the parsed header
    h = json.loads(header)
    change(h)
    write(name, json.dumps(h, separators=(',', ':')))


def tensor(name, **kv):
    return lambda h: h[name].update(kv)


def meta(**kv):
    return lambda h: h['__metadata__'].update(kv)


edited('many_dims', tensor('embed.weight', shape=[1] * 100 + [11, 4]))
edited('f16', tensor('embed.weight', dtype='F16', data_offsets=[0, 88]))
edited('f64', tensor('embed.weight', dtype='F64', shape=[11, 2]))
edited('i32', tensor('out.weight', dtype='I32'))
edited('negative_shape', tensor('embed.weight', shape=[-11, -4]))
edited('huge_shape', tensor('embed.weight', shape=[2147483647] * 4))
edited('offsets_reversed', tensor('embed.weight', data_offsets=[176, 0]))
edited('offsets_beyond', tensor('train.carried', data_offsets=[556, 1 << 40]))
edited('offsets_size', tensor('embed.weight', data_offsets=[0, 172]))
edited('offsets_overlap', tensor('rnn.weight_ih_l0', data_offsets=[160, 224]))
edited('step_abc', meta(step='abc'))
edited('best_step_future', meta(best_step='99'))
edited('bad_rng', meta(rng='not an rng'))
edited('format', meta(format='tapezoo-0'))
edited('no_vocab', lambda h: h['__metadata__'].pop('vocab'))
edited('no_metadata', lambda h: h.pop('__metadata__'))
edited('metadata_number', lambda h: h['__metadata__'].update(step=4))
# another model's checkpoint: metadata and cfg of a GRU, the tensors of this RNN
edited('other_model', meta(model='gru', cfg=json.loads(header)['__metadata__']['cfg'].replace('type = rnn', 'type = gru')))
# a cfg whose sizes differ from the tensors (hidden 8, tensors of hidden 4)
edited('other_cfg', meta(cfg=json.loads(header)['__metadata__']['cfg'].replace('hidden = 4', 'hidden = 8')))
write('bad_json', header.replace('"__metadata__"', '"__metadata__"::', 1))
write('trailing', header.rstrip() + ' {}')
write('deep', '[' * 1000)
write('not_object', '[1,2,3]')
