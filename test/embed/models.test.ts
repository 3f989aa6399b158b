import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalEmbedder } from '../../src/embed/embedder.ts';
import { ModelLoadError, UnknownModelError } from '../../src/embed/errors.ts';
import { makeModel } from '../../src/embed/make-model.ts';
import { makeTinyModels } from './helpers.ts';
import { tokenizerDir, tokenizerSource } from '../fixtures/index.ts';

let models: ReturnType<typeof makeTinyModels>;
beforeAll(() => {
  models = makeTinyModels(['m1', 'm2', 'm3']);
  makeModel({ arch: 'tiny', name: 'generated-vocab', out: models.dir, tokenizerDir: '/nonexistent' });
});
afterAll(() => models?.cleanup());

describe('make-model', () => {
  it('writes the transformers.js layout with a consistent config', () => {
    const config = JSON.parse(readFileSync(join(models.dir, 'm1', 'config.json'), 'utf8'));
    // the vocabulary is the tokenizer's: all-MiniLM-L6-v2's 30522 tokens when ../shared/models has
    // it, else make-model's generated WordPiece vocabulary (fewer than 1000 tokens)
    const vocab = readFileSync(join(models.dir, 'm1', 'vocab.txt'), 'utf8').split('\n').filter(Boolean);
    expect(config).toMatchObject({ model_type: 'bert', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, vocab_size: vocab.length });
    if (tokenizerSource() === 'shared') expect(config.vocab_size).toBe(30522);
    else expect(config.vocab_size).toBeLessThan(1000);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt', 'sentence_bert_config.json']) {
      expect(readFileSync(join(models.dir, 'm1', f)).length).toBeGreaterThan(0);
    }
  });

  it('is a valid ONNX BERT graph with finite outputs', async () => {
    const session = await InferenceSession.create(join(models.dir, 'm1', 'onnx', 'model.onnx'));
    expect([...session.inputNames].sort()).toEqual(['attention_mask', 'input_ids', 'token_type_ids']);
    expect(session.outputNames).toEqual(['last_hidden_state']);
    // [CLS] the world [SEP] / [CLS] the [SEP] [PAD], ids looked up in whichever vocabulary m1 has
    const vocab = readFileSync(join(models.dir, 'm1', 'vocab.txt'), 'utf8').split('\n');
    const [cls, the, world, sep, pad] = ['[CLS]', 'the', 'world', '[SEP]', '[PAD]'].map((t) => BigInt(vocab.indexOf(t)));
    expect([cls, the, world, sep, pad].every((id) => id >= 0n)).toBe(true);
    const ids = BigInt64Array.from([cls, the, world, sep, cls, the, sep, pad]);
    const mask = BigInt64Array.from([1n, 1n, 1n, 1n, 1n, 1n, 1n, 0n]);
    const out = await session.run({
      input_ids: new Tensor('int64', ids, [2, 4]),
      attention_mask: new Tensor('int64', mask, [2, 4]),
      token_type_ids: new Tensor('int64', new BigInt64Array(8), [2, 4]),
    });
    expect(out.last_hidden_state.dims).toEqual([2, 4, 32]);
    expect((out.last_hidden_state.data as Float32Array).every(Number.isFinite)).toBe(true);
    await session.release();
  });

  it('is deterministic for a seed', () => {
    const a = readFileSync(join(models.dir, 'm1', 'onnx', 'model.onnx'));
    const again = makeModel({ arch: 'tiny', name: 'm1-again', out: models.dir, seed: 7, tokenizerDir: tokenizerDir() });
    expect(readFileSync(join(again.dir, 'onnx', 'model.onnx')).equals(a)).toBe(true);
    expect(readFileSync(join(models.dir, 'm2', 'onnx', 'model.onnx')).equals(a)).toBe(false);
  });

  it('falls back to a generated WordPiece vocabulary', async () => {
    const config = JSON.parse(readFileSync(join(models.dir, 'generated-vocab', 'config.json'), 'utf8'));
    expect(config.vocab_size).toBeLessThan(1000);
    const e = new LocalEmbedder({ modelDir: models.dir, runtime: 'inline' });
    const res = await e.embed('generated-vocab', ['the cat sat on the mat', 'unknown wörds']);
    expect(res.dimensions).toBe(32);
    expect(res.embeddings.every((v) => v.every(Number.isFinite))).toBe(true);
    await e.close();
  });
});

describe('model registry', () => {
  it('loads lazily and once, preloads, and unloads on request', async () => {
    const e = new LocalEmbedder({ modelDir: models.dir, runtime: 'inline', preload: ['m2'] });
    expect(e.loaded()).toEqual([]);
    await Promise.all([e.embed('m1', 'a'), e.embed('m1', 'b'), e.embed('m1', ['c', 'd'])]);
    expect(e.loaded().map((m) => m.name)).toEqual(['m1']);
    await e.preload();
    expect(e.loaded().map((m) => m.name).sort()).toEqual(['m1', 'm2']);
    expect(await e.unload('m1')).toBe(true);
    expect(await e.unload('m1')).toBe(false);
    expect(e.loaded().map((m) => m.name)).toEqual(['m2']);
    await expect(e.embed('m1', 'reloaded')).resolves.toMatchObject({ dimensions: 32 });
    await e.close();
    expect(e.loaded()).toEqual([]);
  });

  it('unloads the least recently used model past the memory cap', async () => {
    const probe = new LocalEmbedder({ modelDir: models.dir, runtime: 'inline' });
    await probe.embed('m1', 'x');
    const size = probe.loaded()[0].estimatedBytes;
    await probe.close();

    const e = new LocalEmbedder({ modelDir: models.dir, runtime: 'inline', memoryLimitBytes: Math.floor(size * 2.5) });
    await e.embed('m1', 'x');
    await e.embed('m2', 'x');
    await e.embed('m1', 'x'); // m2 is now least recently used
    await e.embed('m3', 'x');
    expect(e.loaded().map((m) => m.name).sort()).toEqual(['m1', 'm3']);
    await e.close();

    const tooSmall = new LocalEmbedder({ modelDir: models.dir, runtime: 'inline', memoryLimitBytes: Math.floor(size / 2) });
    await expect(tooSmall.embed('m1', 'x')).rejects.toBeInstanceOf(ModelLoadError);
  });

  it('a worker-backed model can be unloaded and reloaded', async () => {
    const e = new LocalEmbedder({ modelDir: models.dir });
    const first = await e.embed('m3', 'same');
    expect(await e.unload('m3')).toBe(true);
    const second = await e.embed('m3', 'same');
    expect([...second.embeddings[0]]).toEqual([...first.embeddings[0]]);
    await e.close();
  });

  it('remote names are limited to the allow-list', async () => {
    const off = new LocalEmbedder({ modelDir: models.dir, remoteAllowList: ['Xenova/some-model'] });
    expect(off.models()).not.toContain('Xenova/some-model');
    await expect(off.embed('Xenova/some-model', 'x')).rejects.toThrow(/PGML_ALLOW_REMOTE_MODELS/);
    const on = new LocalEmbedder({ modelDir: models.dir, allowRemoteModels: true, remoteAllowList: ['Xenova/some-model'] });
    expect(on.models()).toEqual(expect.arrayContaining(['m1', 'm2', 'Xenova/some-model']));
    const err = await on.embed('Xenova/other', 'x').catch((x: unknown) => x);
    expect(err).toBeInstanceOf(UnknownModelError);
    expect((err as UnknownModelError).available).toContain('Xenova/some-model');
  });

  it('downloads allow-listed models from the hub (a local stand-in) into the cache dir', async () => {
    const requested: string[] = [];
    // serves <models.dir>/m1 as hub repo "org/m1": GET /org/m1/resolve/main/<file>
    const hub = createServer((req, res) => {
      requested.push(req.url!);
      const m = /^\/org\/m1\/resolve\/main\/(.+)$/.exec(req.url!);
      const file = m && join(models.dir, 'm1', decodeURIComponent(m[1]));
      if (!file || !existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200).end(readFileSync(file));
    });
    await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
    const cacheDir = mkdtempSync(join(tmpdir(), 'pgml-hub-cache-'));
    const emptyDir = mkdtempSync(join(tmpdir(), 'pgml-no-models-'));
    try {
      const e = new LocalEmbedder({
        modelDir: emptyDir,
        cacheDir,
        runtime: 'inline',
        allowRemoteModels: true,
        remoteAllowList: ['org/m1'],
        remoteHost: `http://127.0.0.1:${(hub.address() as AddressInfo).port}/`,
      });
      const remote = await e.embed('org/m1', ['hello', Array(200).fill('word').join(' ')]);
      const local = new LocalEmbedder({ modelDir: models.dir, runtime: 'inline' });
      const expected = await local.embed('m1', ['hello', Array(200).fill('word').join(' ')]);
      expect([...remote.embeddings[0]]).toEqual([...expected.embeddings[0]]);
      expect(remote.truncated).toBe(1); // max_seq_length 128 from the hub's sentence_bert_config.json
      expect(requested).toContain('/org/m1/resolve/main/onnx/model.onnx');
      expect(requested).toContain('/org/m1/resolve/main/sentence_bert_config.json');
      await Promise.all([e.close(), local.close()]);
    } finally {
      hub.close();
      rmSync(cacheDir, { recursive: true, force: true });
      rmSync(emptyDir, { recursive: true, force: true });
    }
  });
});
