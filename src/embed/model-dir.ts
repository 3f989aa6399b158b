/**
 * Finds models: local directories under PGML_MODEL_DIR in the transformers.js layout
 * (one or two levels deep, e.g. `all-MiniLM-L6-v2` or `Xenova/all-MiniLM-L6-v2`), and
 * allow-listed hub names when remote models are on.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { EmbedConfig } from './config.ts';
import { UnknownModelError } from './errors.ts';

export interface ModelSpec {
  /** the name callers use */
  name: string;
  source: 'local' | 'remote';
  /** transformers.js model id: a path relative to `localModelPath`, or a hub id */
  id: string;
  localModelPath: string;
  cacheDir: string;
  allowRemote: boolean;
  remoteHost?: string;
  dtype: 'fp32' | 'q8';
  /** sentence-transformers max_seq_length when the directory declares it */
  maxSeqLength?: number;
  /** rough resident size once loaded, for the memory cap */
  estimatedBytes: number;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;
const ONNX_FILES = { fp32: 'model.onnx', q8: 'model_quantized.onnx' } as const;
/** Measured: minilm-l6 fp32 (86 MB file) adds ~121 MB RSS once loaded and warmed. The worker thread itself (~150-200 MB, paid once) is not counted. */
const RESIDENT_FACTOR = 1.5;
const UNKNOWN_REMOTE_BYTES = 256 * 1024 * 1024;

export function isValidModelName(name: string): boolean {
  return NAME_RE.test(name) && !name.split('/').some((p) => p === '.' || p === '..');
}

function onnxFile(dir: string, preferred: 'fp32' | 'q8'): { dtype: 'fp32' | 'q8'; path: string } | undefined {
  const order: ('fp32' | 'q8')[] = preferred === 'fp32' ? ['fp32', 'q8'] : ['q8', 'fp32'];
  for (const dtype of order) {
    const path = join(dir, 'onnx', ONNX_FILES[dtype]);
    if (existsSync(path)) return { dtype, path };
  }
  return undefined;
}

function isModelDir(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'tokenizer.json')) && onnxFile(dir, 'fp32') !== undefined;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => (e.isDirectory() || e.isSymbolicLink()) && !e.name.startsWith('.'))
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/** Names of the complete local models, sorted. */
export function listLocalModels(modelDir: string): string[] {
  const names: string[] = [];
  for (const a of subdirs(modelDir)) {
    if (isModelDir(join(modelDir, a))) names.push(a);
    else for (const b of subdirs(join(modelDir, a))) if (isModelDir(join(modelDir, a, b))) names.push(`${a}/${b}`);
  }
  return names.sort();
}

/** Every name `resolveModel` accepts: local models, plus the allow-list when remote models are on. */
export function listAvailableModels(config: EmbedConfig): string[] {
  const local = listLocalModels(config.modelDir);
  const remote = config.allowRemoteModels ? config.remoteAllowList.filter((n) => !local.includes(n)) : [];
  return [...local, ...remote];
}

function readMaxSeqLength(dir: string): number | undefined {
  try {
    const v = JSON.parse(readFileSync(join(dir, 'sentence_bert_config.json'), 'utf8')).max_seq_length;
    return Number.isInteger(v) && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

function localSpec(config: EmbedConfig, name: string, id: string): ModelSpec {
  const dir = join(config.modelDir, id);
  const file = onnxFile(dir, config.dtype)!;
  return {
    name,
    source: 'local',
    id,
    localModelPath: config.modelDir,
    cacheDir: config.cacheDir,
    allowRemote: false,
    dtype: file.dtype,
    maxSeqLength: readMaxSeqLength(dir),
    estimatedBytes: statSync(file.path).size * RESIDENT_FACTOR + statSync(join(dir, 'tokenizer.json')).size * 4,
  };
}

/**
 * Maps a requested name to a loadable model. A hub-style name `org/model` also
 * matches a local directory named `model` (so `sentence-transformers/all-MiniLM-L6-v2`
 * finds `<modelDir>/all-MiniLM-L6-v2`).
 */
export function resolveModel(config: EmbedConfig, name: string): ModelSpec {
  if (typeof name !== 'string' || !isValidModelName(name)) {
    throw new UnknownModelError(String(name), listAvailableModels(config), 'model names look like "name" or "org/name"');
  }
  if (isModelDir(join(config.modelDir, name))) return localSpec(config, name, name);
  if (name.includes('/') && isModelDir(join(config.modelDir, basename(name)))) return localSpec(config, name, basename(name));
  if (config.allowRemoteModels && config.remoteAllowList.includes(name)) {
    return {
      name,
      source: 'remote',
      id: name,
      localModelPath: config.modelDir,
      cacheDir: config.cacheDir,
      allowRemote: true,
      remoteHost: config.remoteHost,
      dtype: config.dtype,
      estimatedBytes: UNKNOWN_REMOTE_BYTES,
    };
  }
  // the directory's path is the server's business, not the caller's
  const hint = config.allowRemoteModels
    ? `remote models are limited to PGML_REMOTE_MODELS`
    : `put the model in PGML_MODEL_DIR/<name>/ or set PGML_ALLOW_REMOTE_MODELS=true`;
  throw new UnknownModelError(name, listAvailableModels(config), hint);
}
