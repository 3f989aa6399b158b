import { describe, expect, it } from 'vitest';
import { embedConfigFromEnv } from '../../src/embed/config.ts';
import { chunksByLength } from '../../src/embed/encoder.ts';
import { isValidModelName } from '../../src/embed/model-dir.ts';
import { l2Normalize, poolRow } from '../../src/embed/pooling.ts';
import { padBatch } from '../../src/embed/tokenize.ts';

describe('pooling', () => {
  // batch 2, seq 3, dim 2
  const hidden = Float32Array.from([1, 2, 3, 4, 100, 100, /* row 2 */ 5, 6, 7, 8, 9, 10]);
  it('mean ignores padded positions', () => {
    const out = new Float32Array(2);
    poolRow(hidden, 0, 3, 2, [1, 1, 0], 'mean', out);
    expect([...out]).toEqual([2, 3]);
    poolRow(hidden, 1, 3, 2, [1, 1, 1], 'mean', out);
    expect([...out]).toEqual([7, 8]);
  });
  it('cls takes the first token', () => {
    const out = new Float32Array(2);
    poolRow(hidden, 1, 3, 2, [1, 0, 0], 'cls', out);
    expect([...out]).toEqual([5, 6]);
  });
  it('l2 normalisation, zero vector stays zero', () => {
    expect([...l2Normalize(Float32Array.from([3, 4]))]).toEqual([0.6000000238418579, 0.800000011920929]);
    expect([...l2Normalize(new Float32Array(3))]).toEqual([0, 0, 0]);
  });
});

describe('padding and chunking', () => {
  it('pads right with mask 0', () => {
    const p = padBatch([[101, 5, 102], [101, 102]]);
    expect(p.seq).toBe(3);
    expect([...p.inputIds]).toEqual([101n, 5n, 102n, 101n, 102n, 0n]);
    expect([...p.mask]).toEqual([1, 1, 1, 1, 1, 0]);
  });
  it('chunks sorted by length within the token budget', () => {
    const rows = [Array(300).fill(1), [1, 2], Array(300).fill(1), [1], ...Array.from({ length: 40 }, () => Array(200).fill(1))];
    const chunks = chunksByLength(rows);
    expect(chunks.flat().sort((a, b) => a - b)).toEqual(rows.map((_, i) => i));
    for (const c of chunks) expect(c.length * Math.max(...c.map((i) => rows[i].length))).toBeLessThanOrEqual(8192);
    expect(chunks[0].slice(0, 2)).toEqual([3, 1]);
  });
});

describe('config and names', () => {
  it('reads env', () => {
    const c = embedConfigFromEnv({
      PGML_MODEL_DIR: '/m',
      PGML_ALLOW_REMOTE_MODELS: 'true',
      PGML_REMOTE_MODELS: 'a/b, c/d',
      PGML_EMBED_BATCH_WINDOW_MS: '1.5',
      PGML_EMBED_MAX_BATCH: '16',
      PGML_EMBED_MEMORY_LIMIT_MB: '512',
      PGML_PRELOAD_MODELS: 'x',
    });
    expect(c).toMatchObject({
      modelDir: '/m',
      cacheDir: '/m/.cache',
      allowRemoteModels: true,
      remoteAllowList: ['a/b', 'c/d'],
      batchWindowMs: 1.5,
      maxBatchSize: 16,
      memoryLimitBytes: 512 * 1024 * 1024,
      preload: ['x'],
      runtime: 'worker',
    });
    expect(embedConfigFromEnv({}).allowRemoteModels).toBe(false);
    expect(() => embedConfigFromEnv({ PGML_EMBED_MAX_BATCH: 'lots' })).toThrow(/PGML_EMBED_MAX_BATCH/);
  });
  it('model names cannot escape the model directory', () => {
    expect(isValidModelName('all-MiniLM-L6-v2')).toBe(true);
    expect(isValidModelName('Xenova/all-MiniLM-L6-v2')).toBe(true);
    for (const bad of ['../x', 'a/../../b', '/abs', 'a/b/c', '', '.hidden', 'a b']) expect(isValidModelName(bad)).toBe(false);
  });
});
