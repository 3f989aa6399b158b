import { expect } from 'vitest';
import type { ModelMetadata, TrainedModel } from '../../src/ml/model-types.ts';
import { exportOnnx } from '../../src/ml/onnx/export.ts';
import { type OrtPrediction, OrtModel } from '../../src/ml/onnx/runtime.ts';
import { refPredictRaw } from './reference.ts';

export const TOL = 1e-5;

export function close(actual: number, expected: number, what: string): void {
  const ok = Math.abs(actual - expected) <= TOL * Math.max(1, Math.abs(expected)) || (Number.isNaN(actual) && Number.isNaN(expected));
  if (!ok) expect.fail(`${what}: got ${actual}, expected ${expected}`);
}

/** Compares ORT output to the reference evaluator row by row; returns the ORT prediction. */
export function compare(model: TrainedModel, meta: ModelMetadata, x: Float32Array, rows: number, p: OrtPrediction): void {
  const w = x.length / rows;
  for (let i = 0; i < rows; i++) {
    const ref = refPredictRaw(model, meta, x.subarray(i * w, (i + 1) * w));
    if (meta.task === 'regression') {
      ref.values.forEach((v, o) => close(p.values[i * ref.values.length + o], v, `row ${i} output ${o}`));
    } else {
      const k = ref.probabilities!.length;
      expect(p.classes).toBe(k);
      ref.probabilities!.forEach((v, j) => close(p.probabilities![i * k + j], v, `row ${i} prob ${j}`));
      expect(p.label![i], `row ${i} label`).toBe(ref.label);
      expect(p.values[i]).toBe(ref.label);
    }
  }
}

export async function exportAndCompare(model: TrainedModel, meta: ModelMetadata, x: Float32Array, rows: number): Promise<OrtPrediction> {
  const ort = await OrtModel.create(exportOnnx(model, meta));
  try {
    const p = await ort.run(x, rows);
    compare(model, meta, x, rows, p);
    return p;
  } finally {
    await ort.release();
  }
}
