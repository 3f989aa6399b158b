/**
 * Writes a random-weight BERT-family model in the transformers.js directory layout:
 *   <out>/<name>/{config.json, tokenizer.json, tokenizer_config.json,
 *                 special_tokens_map.json, vocab.txt, sentence_bert_config.json, onnx/model.onnx}
 * Tokenizer files are copied from a real model directory when present, else a small
 * WordPiece vocabulary is generated.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBertOnnx, type BertArch } from './bert-onnx.ts';
import { generatedTokenizerFiles } from './wordpiece-vocab.ts';

export const ARCHS = {
  tiny: { hiddenSize: 32, numLayers: 2, numHeads: 2, intermediateSize: 64, maxPositions: 128, maxSeqLength: 128 },
  'minilm-l6': { hiddenSize: 384, numLayers: 6, numHeads: 12, intermediateSize: 1536, maxPositions: 512, maxSeqLength: 256 },
} as const;
export type ArchName = keyof typeof ARCHS;

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt'];

/** ../shared/models/all-MiniLM-L6-v2 relative to the repository root. */
export const DEFAULT_TOKENIZER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/models/all-MiniLM-L6-v2');

export interface MakeModelOptions {
  arch: ArchName;
  name: string;
  /** parent directory; the model is written to <out>/<name> */
  out: string;
  seed?: number;
  /** where to copy tokenizer files from; a missing directory means "generate a vocabulary" */
  tokenizerDir?: string;
}

export interface MadeModel {
  dir: string;
  vocabSize: number;
  tokenizer: 'copied' | 'generated';
  onnxBytes: number;
}

export function makeModel(opts: MakeModelOptions): MadeModel {
  const spec = ARCHS[opts.arch];
  if (!spec) throw new Error(`unknown arch '${opts.arch}' (expected ${Object.keys(ARCHS).join(' | ')})`);
  if (!/^[A-Za-z0-9._-]+$/.test(opts.name)) throw new Error(`invalid model name '${opts.name}'`);
  const dir = join(opts.out, opts.name);
  mkdirSync(join(dir, 'onnx'), { recursive: true });

  const srcDir = opts.tokenizerDir ?? DEFAULT_TOKENIZER_DIR;
  const copy = TOKENIZER_FILES.every((f) => existsSync(join(srcDir, f)));
  let vocabSize: number;
  if (copy) {
    // read+write rather than copyFile: the source files may be read-only.
    for (const f of TOKENIZER_FILES) writeFileSync(join(dir, f), readFileSync(join(srcDir, f)));
    vocabSize = Object.keys(JSON.parse(readFileSync(join(srcDir, 'tokenizer.json'), 'utf8')).model.vocab).length;
  } else {
    const files = generatedTokenizerFiles();
    for (const [f, text] of Object.entries(files.files)) writeFileSync(join(dir, f), text);
    vocabSize = files.vocabSize;
  }

  const arch: BertArch = {
    vocabSize,
    hiddenSize: spec.hiddenSize,
    numLayers: spec.numLayers,
    numHeads: spec.numHeads,
    intermediateSize: spec.intermediateSize,
    maxPositions: spec.maxPositions,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
  };
  const config = {
    _name_or_path: opts.name,
    architectures: ['BertModel'],
    model_type: 'bert',
    hidden_act: 'gelu',
    hidden_size: arch.hiddenSize,
    intermediate_size: arch.intermediateSize,
    num_attention_heads: arch.numHeads,
    num_hidden_layers: arch.numLayers,
    max_position_embeddings: arch.maxPositions,
    type_vocab_size: arch.typeVocabSize,
    vocab_size: vocabSize,
    layer_norm_eps: arch.layerNormEps,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    initializer_range: 0.02,
    pgml_generated: { arch: opts.arch, seed: opts.seed ?? 42, random_weights: true },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileSync(join(dir, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: spec.maxSeqLength, do_lower_case: false }) + '\n');

  const onnx = buildBertOnnx(arch, opts.seed ?? 42);
  writeFileSync(join(dir, 'onnx', 'model.onnx'), onnx);
  return { dir, vocabSize, tokenizer: copy ? 'copied' : 'generated', onnxBytes: onnx.byteLength };
}
