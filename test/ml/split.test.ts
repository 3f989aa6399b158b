import { describe, expect, it } from 'vitest';
import { splitRows, testCount } from '../../src/ml/split.ts';
import { MLInputError } from '../../src/ml/hyperparams.ts';

describe('split', () => {
  it('sizes: fraction rounds like PostgresML, counts > 1 are rows', () => {
    expect(testCount(10, 0.25)).toBe(3); // round(2.5) = 3
    expect(testCount(100, 0.2)).toBe(20);
    expect(testCount(100, 7)).toBe(7);
    expect(() => testCount(10, 10)).toThrow(MLInputError);
    expect(() => testCount(10, 0)).toThrow(MLInputError);
  });

  it('first / last keep order; random is a seeded permutation', () => {
    const first = splitRows(10, { testSize: 0.3, testSampling: 'first' });
    expect(Array.from(first.test)).toEqual([0, 1, 2]);
    expect(Array.from(first.train)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    const last = splitRows(10, { testSize: 0.3, testSampling: 'last' });
    expect(Array.from(last.test)).toEqual([7, 8, 9]);
    const a = splitRows(1000, { testSize: 0.25, testSampling: 'random', seed: 3 });
    const b = splitRows(1000, { testSize: 0.25, testSampling: 'random', seed: 3 });
    const c = splitRows(1000, { testSize: 0.25, testSampling: 'random', seed: 4 });
    expect(Array.from(a.test)).toEqual(Array.from(b.test));
    expect(Array.from(a.test)).not.toEqual(Array.from(c.test));
    const all = [...a.train, ...a.test].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('stratified keeps class proportions', () => {
    // 90 of class 0, 10 of class 1
    const y = Float64Array.from({ length: 100 }, (_, i) => (i % 10 === 0 ? 1 : 0));
    const s = splitRows(100, { testSize: 0.2, testSampling: 'stratified', y, seed: 1 });
    expect(s.test.length).toBe(20);
    expect(s.train.length).toBe(80);
    const ones = Array.from(s.test).filter((r) => y[r] === 1).length;
    expect(ones).toBe(2);
    expect(new Set([...s.train, ...s.test]).size).toBe(100);
  });

  it('rejects unknown sampling', () => {
    try {
      splitRows(10, { testSampling: 'middle' });
      expect.unreachable();
    } catch (e) {
      expect((e as MLInputError).details).toBe('valid: random, first, last, stratified');
    }
  });
});
