/** Messages between runner.ts (main thread) and model-worker.ts. Every request has an id its reply repeats. */
import type { EncodeItem, EncodeOutput, EncoderInfo } from './encoder.ts';
import type { ModelSpec } from './model-dir.ts';

export type WorkerRequest =
  | { type: 'load'; id: number; key: string; spec: ModelSpec; threads: number }
  | { type: 'encode'; id: number; key: string; items: EncodeItem[] }
  | { type: 'unload'; id: number; key: string };

export type WorkerReply =
  | { type: 'loaded'; id: number; info: EncoderInfo }
  | ({ type: 'result'; id: number } & EncodeOutput)
  | { type: 'unloaded'; id: number }
  | { type: 'error'; id: number; message: string };
