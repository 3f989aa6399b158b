/**
 * Embedding throughput on clickbait headlines with the minilm-l6 architecture:
 * raw ORT (tokenizer + session.run + pooling on the main thread) vs the transformers.js
 * feature-extraction pipeline vs our embedder (worker and inline), at batch 1 and 32,
 * plus concurrent single-sentence requests (dynamic batching) and event-loop delay.
 *
 *   npx tsx bench/embed-raw.ts [--model-dir models] [--model all-MiniLM-L6-v2] [--n1 200] [--n32 1024] [--rounds 3]
 * Writes bench/results/embed-raw.json. Generates the model if it is missing.
 */
import { AutoTokenizer, env, pipeline } from '@huggingface/transformers';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { LocalEmbedder } from '../src/embed/embedder.ts';
import { makeModel } from '../src/embed/make-model.ts';

const { values } = parseArgs({
  options: {
    'model-dir': { type: 'string', default: 'models' },
    model: { type: 'string', default: 'all-MiniLM-L6-v2' },
    n1: { type: 'string', default: '200' },
    n32: { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '3' },
  },
});
const modelDir = resolve(values['model-dir']!);
const name = values.model!;
const N1 = Number(values.n1);
const N32 = Number(values.n32);
const ROUNDS = Number(values.rounds);

if (!existsSync(join(modelDir, name, 'onnx', 'model.onnx'))) {
  console.log(`generating ${name} (minilm-l6, random weights) in ${modelDir}`);
  makeModel({ arch: 'minilm-l6', name, out: modelDir });
}

const headlines = readFileSync(resolve('../shared/data/clickbait/clickbait_data'), 'utf8')
  .split('\n')
  .concat(readFileSync(resolve('../shared/data/clickbait/non_clickbait_data'), 'utf8').split('\n'))
  .map((s) => s.trim())
  .filter(Boolean);
// interleave the two files so batches mix both kinds of headline
const mixed = headlines.map((_, i) => headlines[(i * 7919) % headlines.length]);

type Run = (texts: string[]) => Promise<unknown>;

async function throughput(run: Run, batch: number, n: number): Promise<number> {
  await run(mixed.slice(0, batch)); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) await run(mixed.slice(i, Math.min(i + batch, n)));
  return (n / (performance.now() - t0)) * 1000;
}

// raw ORT: same tokenizer, one session, masked mean + L2 normalisation inline
env.allowRemoteModels = false;
env.localModelPath = modelDir + '/';
const tok = await AutoTokenizer.from_pretrained(name, { local_files_only: true });
const session = await InferenceSession.create(join(modelDir, name, 'onnx', 'model.onnx'), { graphOptimizationLevel: 'all' });
const raw: Run = async (texts) => {
  const enc = tok(texts, { padding: true, truncation: true, max_length: 256 });
  const [b, s] = enc.input_ids.dims as number[];
  const mask = enc.attention_mask.data as BigInt64Array;
  const out = (
    await session.run({
      input_ids: new Tensor('int64', enc.input_ids.data as BigInt64Array, [b, s]),
      attention_mask: new Tensor('int64', mask, [b, s]),
      token_type_ids: new Tensor('int64', new BigInt64Array(b * s), [b, s]),
    })
  ).last_hidden_state;
  const h = out.data as Float32Array;
  const d = Number(out.dims[2]);
  return texts.map((_, i) => {
    const v = new Float32Array(d);
    let n = 0;
    for (let t = 0; t < s; t++) {
      if (!mask[i * s + t]) continue;
      n++;
      for (let k = 0; k < d; k++) v[k] += h[(i * s + t) * d + k];
    }
    let norm = 0;
    for (let k = 0; k < d; k++) norm += (v[k] /= n) ** 2;
    return v.map((x) => x / Math.sqrt(norm));
  });
};

const pipe = await pipeline('feature-extraction', name, { local_files_only: true, dtype: 'fp32' });
const tjs: Run = (texts) => pipe(texts, { pooling: 'mean', normalize: true });

const worker = new LocalEmbedder({ modelDir, runtime: 'worker' });
const worker0 = new LocalEmbedder({ modelDir, runtime: 'worker', batchWindowMs: 0 });
const inline = new LocalEmbedder({ modelDir, runtime: 'inline' });
await worker.preload([name]);
await worker0.preload([name]);
await inline.preload([name]);
const viaWorker: Run = (texts) => worker.embed(name, texts);
const viaInline: Run = (texts) => inline.embed(name, texts);
const viaWorker0: Run = (texts) => worker0.embed(name, texts);

// Runners alternate over rounds and the best round counts, so a busy machine hurts them alike.
const runners = [
  ['raw ORT', raw],
  ['transformers.js pipeline', tjs],
  ['embedder (worker)', viaWorker],
  ['embedder (worker, window 0)', viaWorker0],
  ['embedder (inline)', viaInline],
] as const;
const results: Record<string, Record<string, number>> = Object.fromEntries(runners.map(([l]) => [l, { batch1: 0, batch32: 0 }]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [label, run] of runners) {
    const r = results[label];
    r.batch1 = Math.max(r.batch1, await throughput(run, 1, N1));
    r.batch32 = Math.max(r.batch32, await throughput(run, 32, N32));
  }
}

// 32 concurrent single-sentence requests at a time: dynamic batching forms the batches
async function concurrent(e: LocalEmbedder, n: number, inFlight: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) await e.embed(name, mixed[next++]);
    }),
  );
  return (n / (performance.now() - t0)) * 1000;
}
const before = { ...worker.loaded()[0].batches };
results['embedder (worker)'].concurrent32x1 = await concurrent(worker, N32, 32);
const after = worker.loaded()[0].batches;
const stats = { requests: after.requests - before.requests, batches: after.batches - before.batches, maxBatchRequests: after.maxBatchRequests };

// event-loop delay while one big request (64 inputs of ~256 tokens) runs
async function lag(e: LocalEmbedder): Promise<{ ms: number; maxDelayMs: number }> {
  const texts = Array.from({ length: 64 }, (_, i) => mixed.slice(i * 20, i * 20 + 20).join(' '));
  let maxDelayMs = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    maxDelayMs = Math.max(maxDelayMs, now - last);
    last = now;
  }, 1);
  const t0 = performance.now();
  await e.embed(name, texts);
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5)); // let the interval see a block that just ended
  clearInterval(tick);
  return { ms, maxDelayMs };
}
const lagWorker = await lag(worker);
const lagInline = await lag(inline);

await worker.close();
await worker0.close();
await inline.close();
await session.release();

const fmt = (x: number) => x.toFixed(0).padStart(7);
console.log(`\n${name} (minilm-l6 architecture, random weights), sentences/s, ${mixed.length} clickbait headlines available`);
console.log(`${'runner'.padEnd(30)} ${'batch 1'.padStart(7)} ${'batch 32'.padStart(8)}`);
for (const [label, r] of Object.entries(results)) console.log(`${label.padEnd(30)} ${fmt(r.batch1)} ${fmt(r.batch32)} `);
const base = results['raw ORT'];
console.log(
  `embedder (worker) / raw ORT: batch 1 ${(results['embedder (worker)'].batch1 / base.batch1).toFixed(2)}x, ` +
    `batch 32 ${(results['embedder (worker)'].batch32 / base.batch32).toFixed(2)}x`,
);
console.log(
  `32 concurrent 1-sentence requests via dynamic batching: ${fmt(results['embedder (worker)'].concurrent32x1)} sentences/s ` +
    `(${stats.requests} requests in ${stats.batches} batches, max ${stats.maxBatchRequests} per batch)`,
);
console.log(
  `event-loop max delay during a 64 x 256-token request: worker ${lagWorker.maxDelayMs.toFixed(1)} ms (request ${lagWorker.ms.toFixed(0)} ms), ` +
    `inline ${lagInline.maxDelayMs.toFixed(1)} ms (request ${lagInline.ms.toFixed(0)} ms)`,
);

mkdirSync(resolve('bench/results'), { recursive: true });
writeFileSync(
  resolve('bench/results/embed-raw.json'),
  JSON.stringify({ model: name, date: new Date().toISOString(), n1: N1, n32: N32, rounds: ROUNDS, sentencesPerSecond: results, batching: stats, eventLoop: { worker: lagWorker, inline: lagInline } }, null, 2) + '\n',
);
