import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbedder, type Embedder } from '../../src/embed/embedder.ts';
import { EmbedInputError, UnknownModelError } from '../../src/embed/errors.ts';
import type { LocalEmbedder } from '../../src/embed/embedder.ts';
import { withCache, type CachedEmbedding, type EmbeddingCache } from '../../src/embed/cache.ts';
import { makeTinyModels, maxAbsDiff, referenceEmbedder } from './helpers.ts';

const MAX_LEN = 128; // ARCHS.tiny.maxSeqLength
let models: ReturnType<typeof makeTinyModels>;
let embedder: Embedder;
let ref: Awaited<ReturnType<typeof referenceEmbedder>>;

const SENTENCES = [
  'The cat sits on the mat.',
  'You Will Never Believe What Happened Next',
  'Stocks fell sharply on Tuesday after the central bank raised rates',
  'a',
  '17 Things Only 90s Kids Will Understand',
  'Ünïcödé and emoji 🎉 are handled too',
];

beforeAll(async () => {
  models = makeTinyModels(['tiny', 'tiny-b']);
  embedder = createEmbedder({ modelDir: models.dir, maxInputs: 300, maxInputChars: 20_000, maxRequestChars: 400_000 });
  ref = await referenceEmbedder(models.dir, 'tiny', MAX_LEN);
});

afterAll(async () => {
  await embedder?.close();
  await ref?.close();
  models?.cleanup();
});

describe('embeddings match an independent reference', () => {
  it('mean pooling + L2 normalisation by default', async () => {
    const res = await embedder.embed('tiny', SENTENCES);
    expect(res.model).toBe('tiny');
    expect(res.dimensions).toBe(32);
    expect(res.truncated).toBe(0);
    const expected = await ref.embed(SENTENCES);
    res.embeddings.forEach((e, i) => {
      expect(e).toHaveLength(32);
      expect(maxAbsDiff(e, expected[i])).toBeLessThan(1e-5);
      expect(Math.hypot(...e)).toBeCloseTo(1, 5);
    });
  });

  it('mean pooling without normalisation', async () => {
    const res = await embedder.embed('tiny', SENTENCES, { normalize: false });
    const expected = await ref.embed(SENTENCES, 'mean', false);
    res.embeddings.forEach((e, i) => expect(maxAbsDiff(e, expected[i])).toBeLessThan(1e-5));
    expect(Math.abs(Math.hypot(...res.embeddings[0]) - 1)).toBeGreaterThan(1e-3);
  });

  it('cls pooling', async () => {
    const res = await embedder.embed('tiny', SENTENCES, { pooling: 'cls' });
    const expected = await ref.embed(SENTENCES, 'cls', true);
    res.embeddings.forEach((e, i) => expect(maxAbsDiff(e, expected[i])).toBeLessThan(1e-5));
  });

  it('a single string input gives one embedding', async () => {
    const res = await embedder.embed('tiny', 'The cat sits on the mat.');
    expect(res.embeddings).toHaveLength(1);
    expect(maxAbsDiff(res.embeddings[0], (await ref.embed(['The cat sits on the mat.']))[0])).toBeLessThan(1e-5);
  });

  it('empty strings embed as [CLS][SEP]', async () => {
    const res = await embedder.embed('tiny', ['', 'x', '']);
    const expected = await ref.embed(['']);
    expect(maxAbsDiff(res.embeddings[0], expected[0])).toBeLessThan(1e-5);
    expect(maxAbsDiff(res.embeddings[2], expected[0])).toBeLessThan(1e-5);
    expect(res.embeddings[0].every(Number.isFinite)).toBe(true);
  });

  it('an empty input list gives no embeddings', async () => {
    const res = await embedder.embed('tiny', []);
    expect(res).toMatchObject({ dimensions: 32, embeddings: [], truncated: 0 });
  });
});

describe('truncation to the model max length', () => {
  it('truncates past max length and reports the count', async () => {
    // each "the" is one token (in the real and the generated vocabulary): n words -> n + 2 tokens with [CLS] and [SEP]
    const exact = Array(MAX_LEN - 2).fill('the').join(' ');
    const over = Array(MAX_LEN - 1).fill('the').join(' ');
    const wayOver = Array(1000).fill('word').join(' ');
    expect(ref.tokenize(exact)).toHaveLength(MAX_LEN);
    const res = await embedder.embed('tiny', [exact, over, 'short', wayOver]);
    expect(res.truncated).toBe(2);
    expect(res.truncatedInputs).toEqual([false, true, false, true]);
    const expected = await ref.embed([exact, over, 'short', wayOver]);
    res.embeddings.forEach((e, i) => expect(maxAbsDiff(e, expected[i])).toBeLessThan(1e-5));
  });

  it('10k-character inputs are truncated like sentence-transformers does it', async () => {
    const words = 'the quick brown fox jumps over lazy dogs while seventeen unbelievable headlines scroll past'.split(' ');
    let text = '';
    for (let i = 0; text.length < 10_000; i++) text += words[(i * 7) % words.length] + (i % 11 === 0 ? '. ' : ' ');
    text = text.slice(0, 10_000);
    const noSpaces = 'x'.repeat(10_000); // one over-long word -> [UNK], not truncated
    const spacey = 'word' + ' '.repeat(9_990) + 'end'; // whitespace only after the first word
    const res = await embedder.embed('tiny', [text, noSpaces, spacey]);
    expect(res.truncatedInputs).toEqual([true, false, false]);
    const expected = await ref.embed([text, noSpaces, spacey]);
    res.embeddings.forEach((e, i) => expect(maxAbsDiff(e, expected[i])).toBeLessThan(1e-5));
  });
});

describe('dynamic batching', () => {
  it('batched results equal unbatched ones', async () => {
    const texts = Array.from({ length: 24 }, (_, i) => `${SENTENCES[i % SENTENCES.length]} number ${i} ${'more '.repeat(i)}`);
    const oneRequest = await embedder.embed('tiny', texts);
    const concurrent = await Promise.all(texts.map((t) => embedder.embed('tiny', t)));
    const sequential: Float32Array[] = [];
    for (const t of texts) sequential.push((await embedder.embed('tiny', t)).embeddings[0]);
    texts.forEach((_, i) => {
      expect(maxAbsDiff(oneRequest.embeddings[i], sequential[i])).toBeLessThan(1e-6);
      expect(maxAbsDiff(concurrent[i].embeddings[0], sequential[i])).toBeLessThan(1e-6);
    });
  });

  it('forms batches of more than one request under concurrency', async () => {
    const stats = () => (embedder as LocalEmbedder).loaded().find((m) => m.name === 'tiny-b')?.batches;
    await embedder.embed('tiny-b', 'warm up');
    const before = { ...stats()! };
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => embedder.embed('tiny-b', `request ${i}`)));
    expect(results.every((r) => r.embeddings.length === 1)).toBe(true);
    const after = stats()!;
    expect(after.requests - before.requests).toBe(40);
    expect(after.batches - before.batches).toBeLessThan(40);
    expect(after.maxBatchRequests).toBeGreaterThan(1);
  });

  it('mixed options in one batch each get their own pooling', async () => {
    const [a, b, c] = await Promise.all([
      embedder.embed('tiny', 'same text', { pooling: 'cls' }),
      embedder.embed('tiny', 'same text', { normalize: false }),
      embedder.embed('tiny', 'same text'),
    ]);
    expect(maxAbsDiff(a.embeddings[0], (await ref.embed(['same text'], 'cls'))[0])).toBeLessThan(1e-5);
    expect(maxAbsDiff(b.embeddings[0], (await ref.embed(['same text'], 'mean', false))[0])).toBeLessThan(1e-5);
    expect(maxAbsDiff(c.embeddings[0], (await ref.embed(['same text']))[0])).toBeLessThan(1e-5);
  });
});

describe('errors', () => {
  it('unknown model lists the available names', async () => {
    const err = await embedder.embed('no-such-model', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownModelError);
    expect((err as UnknownModelError).available).toEqual(['tiny', 'tiny-b']);
    expect((err as Error).message).toMatch(/no-such-model.*tiny, tiny-b/);
    await expect(embedder.embed('../etc', 'x')).rejects.toBeInstanceOf(UnknownModelError);
  });

  it('a hub-style name finds the local directory of its last part', async () => {
    const res = await embedder.embed('sentence-transformers/tiny', 'hello');
    expect(maxAbsDiff(res.embeddings[0], (await ref.embed(['hello']))[0])).toBeLessThan(1e-5);
  });

  it.each([
    ['non-string input', [['ok', 42]], /inputs\[1\] must be a string/],
    ['null input', [null], /inputs must be a string or an array/],
    ['object input', [{ text: 'x' }], /inputs must be a string or an array/],
    ['too many inputs', [Array(301).fill('x')], /too many inputs: 301/],
    ['over-long input', ['y'.repeat(20_001)], /inputs\[0\] is too long/],
    ['over-long request', [Array(22).fill('z'.repeat(19_000))], /request too long/],
  ])('%s -> input error', async (_name, [inputs], message) => {
    const err = await embedder.embed('tiny', inputs as string[]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbedInputError);
    expect((err as Error).message).toMatch(message);
  });

  it('bad options -> input error', async () => {
    await expect(embedder.embed('tiny', 'x', { pooling: 'max' as 'mean' })).rejects.toThrow(/pooling must be one of mean, cls/);
    await expect(embedder.embed('tiny', 'x', { normalize: 'yes' as unknown as boolean })).rejects.toThrow(/normalize must be a boolean/);
    await expect(embedder.embed(42 as unknown as string, 'x')).rejects.toBeInstanceOf(EmbedInputError);
  });
});

describe('cache seam', () => {
  it('computes only the misses and returns the same embeddings', async () => {
    const store = new Map<string, CachedEmbedding>();
    const key = (v: { model: string; pooling: string; normalize: boolean }, t: string) => `${v.model}|${v.pooling}|${v.normalize}|${t}`;
    const cache: EmbeddingCache = {
      get: async (v, texts) => texts.map((t) => store.get(key(v, t))),
      put: async (v, texts, rows) => texts.forEach((t, i) => store.set(key(v, t), rows[i])),
    };
    const computed: string[][] = [];
    const counting: Embedder = Object.assign(Object.create(embedder), {
      embed: (m: string, i: string | string[], o?: object) => (computed.push([i].flat()), embedder.embed(m, i, o)),
    });
    const cached = withCache(counting, cache, (embedder as LocalEmbedder).config);
    const long = Array(200).fill('word').join(' ');
    const first = await cached.embed('tiny', ['a', 'b', long]);
    const second = await cached.embed('tiny', ['b', 'c', long, 'a']);
    expect(computed).toEqual([['a', 'b', long], ['c']]);
    expect(second.truncated).toBe(1);
    expect([...second.embeddings[0]]).toEqual([...first.embeddings[1]]);
    expect([...second.embeddings[3]]).toEqual([...first.embeddings[0]]);
    await cached.embed('tiny', ['a'], { pooling: 'cls' });
    expect(computed).toHaveLength(3); // another variant is another cache entry
  });
});

describe('event loop', () => {
  it('stays responsive while a large batch runs in the worker', async () => {
    const texts = Array.from({ length: 256 }, (_, i) => `${i} ` + 'lorem ipsum dolor sit amet '.repeat(40));
    let maxLagMs = 0;
    let last = performance.now();
    const tick = setInterval(() => {
      const now = performance.now();
      maxLagMs = Math.max(maxLagMs, now - last);
      last = now;
    }, 1);
    const started = performance.now();
    const res = await embedder.embed('tiny', texts);
    const elapsed = performance.now() - started;
    await new Promise((r) => setTimeout(r, 5)); // a block that just ended shows up on the next tick
    clearInterval(tick);
    expect(res.truncated).toBe(256);
    console.log(`256 x ${MAX_LEN} tokens: ${elapsed.toFixed(0)} ms, max event-loop delay ${maxLagMs.toFixed(1)} ms`);
    expect(maxLagMs).toBeLessThan(Math.max(50, elapsed / 4));
  });
});
