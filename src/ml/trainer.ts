import type { Worker } from 'node:worker_threads';
import { spawnBundledWorker } from '../worker-thread.ts';
import { MLInputError } from './hyperparams.ts';
import type { ColumnPreprocessor, ModelMetadata, TrainedModel } from './model-types.ts';
import type { TrainJob, WorkerMessage } from './train-worker.ts';
import { ApiError, apiError } from '../errors.ts';

export interface TrainOutput {
  model: TrainedModel;
  metrics: Record<string, number>;
  hyperparams: Record<string, unknown>;
  chosenHyperparams: Record<string, unknown>;
  searchResults?: unknown;
  meta: ModelMetadata & { columns: ColumnPreprocessor[] };
  onnx: Uint8Array;
  trainRows: number;
  testRows: number;
}

export class TrainingCancelled extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'TrainingCancelled';
  }

  toApiError(): ApiError {
    return apiError(409, 'PGML409', this.message);
  }
}

const WORKER_URL = new URL('./train-worker.ts', import.meta.url);

/**
 * Trains in a worker thread of its own (terminating it is the only sure stop of a runaway
 * training). The thread runs the entry bundled once per process, so it needs no TypeScript
 * loader; how many run at once is bounded by the caller (training-slots.ts). `signal` cancels
 * (the worker stops at its next check, and is terminated if it does not within a second);
 * `timeoutMs` bounds the training time.
 */
export async function trainInWorker(job: Omit<TrainJob, 'cancel'>, opts: { signal?: AbortSignal; timeoutMs?: number; onProgress?: (f: number) => void } = {}): Promise<TrainOutput> {
  if (opts.signal?.aborted) throw new TrainingCancelled('training was cancelled');
  return run(await spawnBundledWorker(WORKER_URL), job, opts);
}

function run(worker: Worker, job: Omit<TrainJob, 'cancel'>, opts: { signal?: AbortSignal; timeoutMs?: number; onProgress?: (f: number) => void }): Promise<TrainOutput> {
  const cancel = new SharedArrayBuffer(4);
  const flag = new Int32Array(cancel);
  return new Promise<TrainOutput>((resolve, reject) => {
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      fn();
    };
    const stop = (reason: string) => {
      Atomics.store(flag, 0, 1);
      killTimer = setTimeout(() => finish(() => reject(new TrainingCancelled(reason))), 1000);
    };
    const onAbort = () => stop('training was cancelled');
    const timeout = setTimeout(() => stop(`training exceeded the time limit of ${Math.round((opts.timeoutMs ?? 0) / 1000)} s`), opts.timeoutMs ?? 2 ** 31 - 1);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'progress') opts.onProgress?.(m.fraction);
      else if (m.kind === 'done') finish(() => resolve(m.result as unknown as TrainOutput));
      else {
        const e = m.error;
        if (e.name === 'AbortError' || Atomics.load(flag, 0) !== 0) finish(() => reject(new TrainingCancelled(opts.signal?.aborted ? 'training was cancelled' : 'training exceeded its time limit')));
        else if (e.name === 'MLInputError') finish(() => reject(new MLInputError(e.message, e.details, e.hint)));
        else finish(() => reject(new Error(`training failed: ${e.message}`)));
      }
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', (code) => finish(() => reject(new Error(`training worker exited with code ${code}`))));
    worker.postMessage({ ...job, cancel } satisfies TrainJob);
  });
}
