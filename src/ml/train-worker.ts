/**
 * Worker-thread entry: prepare (split + preprocessing), train, score and export to ONNX, off the
 * gateway's event loop. Cancellation arrives through a shared flag checked between iterations.
 */
import { parentPort } from 'node:worker_threads';
import { exportOnnx } from './onnx/export.ts';
import { prepareData, trainModelSync, type PrepareOptions } from './train.ts';
import type { ModelMetadata } from './model-types.ts';
import { featureCount } from './preprocess.ts';

export interface TrainJob {
  prepare: PrepareOptions;
  algorithm: string;
  hyperparams: Record<string, unknown>;
  search: 'grid' | 'random' | null;
  search_params: Record<string, unknown>;
  search_args: Record<string, unknown>;
  yColumn: string | null;
  /** Int32Array(1) over a SharedArrayBuffer: non-zero = cancel */
  cancel: SharedArrayBuffer;
}

export type WorkerMessage =
  | { kind: 'progress'; fraction: number }
  | { kind: 'done'; result: Record<string, unknown> }
  | { kind: 'error'; error: { name: string; message: string; details?: string; hint?: string } };

parentPort!.once('message', (job: TrainJob) => {
  const flag = new Int32Array(job.cancel);
  const signal = { get aborted() { return Atomics.load(flag, 0) !== 0; } };
  try {
    const prepared = prepareData(job.prepare);
    let last = 0;
    const result = trainModelSync({
      task: job.prepare.task,
      algorithm: job.algorithm,
      hyperparams: job.hyperparams,
      search: job.search,
      search_params: job.search_params,
      search_args: job.search_args,
      data: prepared.train,
      testX: prepared.testX,
      testY: prepared.testY,
      numClasses: prepared.classes?.length,
      signal,
      onProgress: (f) => {
        if (f - last >= 0.01 || f === 1) {
          last = f;
          parentPort!.postMessage({ kind: 'progress', fraction: f } satisfies WorkerMessage);
        }
      },
    });
    const meta: ModelMetadata = {
      task: result.model.task,
      algorithm: job.algorithm,
      columns: prepared.preprocessors,
      featureCount: featureCount(prepared.preprocessors),
      featureNames: prepared.train.featureNames,
      classes: prepared.classes,
      yColumn: job.yColumn ?? undefined,
    };
    const onnx = exportOnnx(result.model, meta);
    parentPort!.postMessage({
      kind: 'done',
      result: {
        model: result.model, metrics: result.metrics, hyperparams: result.hyperparams, chosenHyperparams: result.chosenHyperparams,
        searchResults: result.searchResults, meta, onnx, trainRows: prepared.train.x.rows, testRows: prepared.testX.rows,
      },
    } satisfies WorkerMessage);
  } catch (e) {
    const err = e as Error & { details?: string; hint?: string };
    parentPort!.postMessage({ kind: 'error', error: { name: err.name, message: err.message, details: err.details, hint: err.hint } } satisfies WorkerMessage);
  }
});
