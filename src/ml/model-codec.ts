/** TrainedModel ⇄ JSON bytes, typed arrays as base64, for pgml.files. */
import type { TrainedModel } from './model-types.ts';

const TYPED: Record<string, { new (buf: ArrayBuffer): ArrayBufferView }> = {
  Float64Array, Float32Array, Int32Array, Uint8Array,
};

export function encodeModel(model: TrainedModel): Uint8Array {
  const json = JSON.stringify(model, (_k, v) => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const view = v as unknown as { constructor: { name: string }; buffer: ArrayBuffer; byteOffset: number; byteLength: number };
      return { $typed: view.constructor.name, b64: Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64') };
    }
    return v;
  });
  return new TextEncoder().encode(json);
}

export function decodeModel(bytes: Uint8Array): TrainedModel {
  return JSON.parse(Buffer.from(bytes).toString('utf8'), (_k, v) => {
    if (v && typeof v === 'object' && typeof v.$typed === 'string') {
      const Ctor = TYPED[v.$typed];
      if (!Ctor) throw new Error(`unknown typed array ${v.$typed}`);
      const raw = Buffer.from(v.b64, 'base64');
      const copy = new ArrayBuffer(raw.byteLength);
      new Uint8Array(copy).set(raw);
      return new Ctor(copy);
    }
    return v;
  }) as TrainedModel;
}
