/**
 * Builds a BERT encoder as an ONNX graph (opset 17) with seeded random weights,
 * with the input/output names transformers.js and sentence-transformers exports use.
 */
import {
  DataType,
  attr,
  encodeModel,
  floatTensor,
  int64Tensor,
  node,
  tensorValueInfo,
  type Node,
  type Tensor,
} from './onnx-writer.ts';

export interface BertArch {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
}

/** mulberry32 uniform generator plus Box-Muller normals: reproducible across runs. */
export function seededNormal(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const u1 = Math.max(uniform(), 1e-12);
    const r = Math.sqrt(-2 * Math.log(u1));
    const th = 2 * Math.PI * uniform();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}

export function buildBertOnnx(arch: BertArch, seed = 42, std = 0.02): Uint8Array {
  const H = arch.hiddenSize;
  const nh = arch.numHeads;
  if (H % nh !== 0) throw new Error(`hidden size ${H} is not divisible by ${nh} heads`);
  const hd = H / nh;
  const randn = seededNormal(seed);
  const nodes: Node[] = [];
  const inits: Tensor[] = [];

  const random = (name: string, dims: number[]) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = randn() * std;
    inits.push(floatTensor(name, dims, data));
    return name;
  };
  const constant = (name: string, dims: number[], value: number) => {
    inits.push(floatTensor(name, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(value)));
    return name;
  };
  const ints = (name: string, values: number[], scalar = false) => {
    inits.push(int64Tensor(name, scalar ? [] : [values.length], values));
    return name;
  };
  const op = (type: string, inputs: string[], out: string, attrs = {}) => {
    nodes.push(node(type, inputs, [out], attrs));
    return out;
  };
  const layerNorm = (x: string, prefix: string) =>
    op('LayerNormalization', [x, constant(`${prefix}.weight`, [H], 1), constant(`${prefix}.bias`, [H], 0)], `${prefix}.out`, {
      axis: attr.int(-1),
      epsilon: attr.float(arch.layerNormEps),
    });
  const linear = (x: string, prefix: string, inDim: number, outDim: number) =>
    op('Add', [op('MatMul', [x, random(`${prefix}.weight`, [inDim, outDim])], `${prefix}.mm`), constant(`${prefix}.bias`, [outDim], 0)], `${prefix}.out`);

  // Embeddings: word + position (0..seq-1) + token type, then LayerNorm.
  const word = op('Gather', [random('embeddings.word', [arch.vocabSize, H]), 'input_ids'], 'emb.word', { axis: attr.int(0) });
  const shape = op('Shape', ['input_ids'], 'emb.shape');
  const seqLen = op('Gather', [shape, ints('const.one', [1], true)], 'emb.seq_len', { axis: attr.int(0) });
  const positions = op('Range', [ints('const.zero', [0], true), seqLen, 'const.one'], 'emb.positions');
  const pos = op('Gather', [random('embeddings.position', [arch.maxPositions, H]), positions], 'emb.pos', { axis: attr.int(0) });
  const tt = op('Gather', [random('embeddings.token_type', [arch.typeVocabSize, H]), 'token_type_ids'], 'emb.tt', { axis: attr.int(0) });
  let x = layerNorm(op('Add', [op('Add', [word, pos], 'emb.word_pos'), tt], 'emb.sum'), 'embeddings.LayerNorm');

  // Additive attention mask [batch, 1, 1, seq]: 0 where attended, -10000 where padded.
  const maskF = op('Cast', ['attention_mask'], 'mask.float', { to: attr.int(DataType.FLOAT) });
  const mask4 = op('Unsqueeze', [maskF, ints('mask.axes', [1, 2])], 'mask.4d');
  const inverted = op('Sub', [constant('const.onef', [], 1), mask4], 'mask.inverted');
  const additive = op('Mul', [inverted, constant('const.neg', [], -10000)], 'mask.additive');

  const headsShape = ints('const.heads_shape', [0, 0, nh, hd]);
  const mergedShape = ints('const.merged_shape', [0, 0, H]);
  const scale = constant('const.scale', [], 1 / Math.sqrt(hd));
  const sqrt2 = constant('const.sqrt2', [], Math.SQRT2);
  const half = constant('const.half', [], 0.5);

  for (let l = 0; l < arch.numLayers; l++) {
    const p = `layer${l}`;
    const heads = (name: string, perm: number[]) =>
      op('Transpose', [op('Reshape', [linear(x, `${p}.attn.${name}`, H, H), headsShape], `${p}.${name}.split`)], `${p}.${name}.t`, {
        perm: attr.ints(perm),
      });
    const q = heads('query', [0, 2, 1, 3]);
    const k = heads('key', [0, 2, 3, 1]);
    const v = heads('value', [0, 2, 1, 3]);
    const scores = op('Add', [op('Mul', [op('MatMul', [q, k], `${p}.qk`), scale], `${p}.scaled`), additive], `${p}.masked`);
    const probs = op('Softmax', [scores], `${p}.probs`, { axis: attr.int(-1) });
    const ctx = op('MatMul', [probs, v], `${p}.ctx`);
    const merged = op('Reshape', [op('Transpose', [ctx], `${p}.ctx.t`, { perm: attr.ints([0, 2, 1, 3]) }), mergedShape], `${p}.ctx.merged`);
    const attnOut = linear(merged, `${p}.attn.output`, H, H);
    const x1 = layerNorm(op('Add', [attnOut, x], `${p}.attn.residual`), `${p}.attn.LayerNorm`);

    // FFN with exact GELU: 0.5 * h * (1 + erf(h / sqrt(2))).
    const h = linear(x1, `${p}.ffn.in`, H, arch.intermediateSize);
    const erf = op('Erf', [op('Div', [h, sqrt2], `${p}.gelu.div`)], `${p}.gelu.erf`);
    const gelu = op('Mul', [op('Mul', [h, op('Add', [erf, 'const.onef'], `${p}.gelu.add`)], `${p}.gelu.mul`), half], `${p}.gelu.out`);
    const ffnOut = linear(gelu, `${p}.ffn.out`, arch.intermediateSize, H);
    x = layerNorm(op('Add', [ffnOut, x1], `${p}.ffn.residual`), `${p}.ffn.LayerNorm`);
  }
  op('Identity', [x], 'last_hidden_state');

  const io = (name: string) => tensorValueInfo(name, DataType.INT64, ['batch_size', 'sequence_length']);
  return encodeModel({
    name: 'bert',
    opset: 17,
    nodes,
    initializers: inits,
    inputs: [io('input_ids'), io('attention_mask'), io('token_type_ids')],
    outputs: [tensorValueInfo('last_hidden_state', DataType.FLOAT, ['batch_size', 'sequence_length', H])],
  });
}
