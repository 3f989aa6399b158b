/** Test fixtures: tiny random-weight models in a temp directory, and an independent reference embedder. */
import { AutoTokenizer, env } from '@huggingface/transformers';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { makeModel } from '../../src/embed/make-model.ts';
import { tokenizerDir } from '../fixtures/index.ts';

/**
 * Random-weight models with the all-MiniLM-L6-v2 tokenizer of ../shared/models when present, else
 * make-model's generated WordPiece vocabulary (test/fixtures; the global setup prints which).
 */
export function makeTinyModels(names: string[], seed = 7): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pgml-embed-'));
  names.forEach((name, i) => makeModel({ arch: 'tiny', name, out: dir, seed: seed + i, tokenizerDir: tokenizerDir() }));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Embeds with a separate ORT session on the raw model file: sentence-transformers
 * truncation ([CLS] + first maxLength-2 text tokens + [SEP]), right padding, masked mean
 * (or CLS) pooling and L2 normalisation, all written out here.
 */
export async function referenceEmbedder(modelDir: string, name: string, maxLength: number) {
  env.allowRemoteModels = false;
  env.localModelPath = modelDir + '/';
  const tok = await AutoTokenizer.from_pretrained(name, { local_files_only: true });
  const [cls, sep] = tok.encode('');
  const session = await InferenceSession.create(join(modelDir, name, 'onnx', 'model.onnx'));
  const tokenize = (text: string) => [cls, ...tok.encode(text, { add_special_tokens: false }).slice(0, maxLength - 2), sep];
  return {
    tokenize,
    async embed(texts: string[], pooling: 'mean' | 'cls' = 'mean', normalize = true): Promise<Float32Array[]> {
      const rows = texts.map(tokenize);
      const b = rows.length;
      const s = Math.max(...rows.map((r) => r.length));
      const ids = new BigInt64Array(b * s);
      const mask = new BigInt64Array(b * s);
      rows.forEach((r, i) => r.forEach((id, t) => ((ids[i * s + t] = BigInt(id)), (mask[i * s + t] = 1n))));
      const feeds = {
        input_ids: new Tensor('int64', ids, [b, s]),
        attention_mask: new Tensor('int64', mask, [b, s]),
        token_type_ids: new Tensor('int64', new BigInt64Array(b * s), [b, s]),
      };
      const out = (await session.run(feeds)).last_hidden_state;
      const h = out.data as Float32Array;
      const d = Number(out.dims[2]);
      return texts.map((_, i) => {
        const v = new Float64Array(d);
        if (pooling === 'cls') for (let k = 0; k < d; k++) v[k] = h[i * s * d + k];
        else {
          let n = 0;
          for (let t = 0; t < s; t++) {
            if (mask[i * s + t] === 0n) continue;
            n++;
            for (let k = 0; k < d; k++) v[k] += h[(i * s + t) * d + k];
          }
          for (let k = 0; k < d; k++) v[k] /= n;
        }
        const norm = normalize ? Math.sqrt(v.reduce((a, x) => a + x * x, 0)) : 1;
        return Float32Array.from(v, (x) => x / norm);
      });
    },
    close: () => session.release(),
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
