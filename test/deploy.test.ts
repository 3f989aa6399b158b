/**
 * deploy/ stays consistent with the app: the cheap part of `npx tsx deploy/validate.ts` (no npm ci,
 * no Docker): YAML parses, Kubernetes manifests / compose / Dockerfile agree with each other and
 * with src/config.ts and routes/health.ts, the HEALTHCHECK one-liner and the entrypoint behave.
 */
import { describe, expect, it } from 'vitest';
import { runStructuralChecks } from '../deploy/lib/checks.ts';
import { DockerIgnore } from '../deploy/lib/dockerfile.ts';
import { checkEntrypoint, checkHealthcheck } from '../deploy/lib/runtime.ts';
import { parseYamlDocuments } from '../deploy/lib/yaml-subset.ts';

describe('deploy/', () => {
  it('passes every structural check', async () => {
    const failed = (await runStructuralChecks()).filter((r) => !r.ok);
    expect(failed).toEqual([]);
  });

  it('HEALTHCHECK one-liner maps /ready to the exit code', async () => {
    const r = await checkHealthcheck();
    expect(r.detail).toBeUndefined();
    expect(r.ok).toBe(true);
  });

  it('entrypoint refuses to start without PGRST_DB_URI and passes --help through', () => {
    const r = checkEntrypoint();
    expect(r.detail).toBeUndefined();
    expect(r.ok).toBe(true);
  }, 90_000);
});

describe('deploy/ validators', () => {
  it('the YAML subset parser reads the constructs used and refuses ambiguous ones', () => {
    expect(parseYamlDocuments('a:\n  - b: 1\n    c: "2"\n  - [x, \'y\']\nd:\ne: on # c\n'.replace('on', '"on"'))).toEqual([
      { a: [{ b: 1, c: '2' }, ['x', 'y']], d: null, e: 'on' },
    ]);
    expect(parseYamlDocuments('k:\n- 1\n---\nx: z\n')).toEqual([{ k: [1] }, { x: 'z' }]);
    for (const bad of ['a: yes', 'a: 0755', 'a: &x 1', 'a: {b: 1}', 'a: 1\na: 2', 'a: b: c', 'a: |\n  x', 'a:\n\tb: 1']) {
      expect(() => parseYamlDocuments(bad), bad).toThrow();
    }
  });

  it('the .dockerignore matcher follows moby: last match wins, parents count, ! re-includes', () => {
    const ig = new DockerIgnore('*\n!src\n!deploy/x.sh\nsrc/secret.ts\n');
    expect(ig.includes('src/a/b.ts')).toBe(true);
    expect(ig.includes('src/secret.ts')).toBe(false);
    expect(ig.includes('deploy/x.sh')).toBe(true);
    expect(ig.includes('deploy/y.sh')).toBe(false);
    expect(ig.includes('node_modules/a/index.js')).toBe(false);
  });
});
