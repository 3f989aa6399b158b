import { describe, expect, it } from 'vitest';
import { DynamicBatcher } from '../../src/embed/batcher.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recording(delayMs = 5) {
  const batches: number[][] = [];
  const run = async (items: number[]) => {
    batches.push(items);
    await sleep(delayMs);
    return items.map((x) => x * 10);
  };
  return { batches, run };
}

describe('DynamicBatcher', () => {
  it('groups requests arriving within the window and splits results back in order', async () => {
    const { batches, run } = recording();
    const b = new DynamicBatcher(run, { windowMs: 5, maxBatchSize: 100 });
    const out = await Promise.all([b.submit([1, 2]), b.submit([3]), b.submit([4, 5, 6])]);
    expect(out).toEqual([[10, 20], [30], [40, 50, 60]]);
    expect(batches).toEqual([[1, 2, 3, 4, 5, 6]]);
    expect(b.stats).toMatchObject({ batches: 1, requests: 3, items: 6, maxBatchRequests: 3 });
  });

  it('respects maxBatchSize without splitting a request', async () => {
    const { batches, run } = recording();
    const b = new DynamicBatcher(run, { windowMs: 5, maxBatchSize: 4 });
    const out = await Promise.all([b.submit([1, 2, 3]), b.submit([4, 5]), b.submit([6]), b.submit([7, 8, 9, 10, 11])]);
    expect(out.flat()).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]);
    expect(batches.every((x) => x.length <= 4 || x.length === 5)).toBe(true);
    expect(batches).toContainEqual([7, 8, 9, 10, 11]); // a request larger than the cap runs alone
  });

  it('queues while a batch runs and flushes the queue as one batch afterwards', async () => {
    const { batches, run } = recording(30);
    const b = new DynamicBatcher(run, { windowMs: 1, maxBatchSize: 100 });
    const first = b.submit([1]);
    await sleep(10); // first batch is running now
    const rest = Promise.all([2, 3, 4].map((x) => b.submit([x])));
    await Promise.all([first, rest]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('a failing run rejects every request of that batch only', async () => {
    let calls = 0;
    const b = new DynamicBatcher(
      async (items: number[]) => {
        if (calls++ === 0) throw new Error('boom');
        return items;
      },
      { windowMs: 2, maxBatchSize: 10 },
    );
    const failed = await Promise.allSettled([b.submit([1]), b.submit([2])]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(b.submit([3])).resolves.toEqual([3]);
  });

  it('window 0 still batches requests submitted in the same tick', async () => {
    const { batches, run } = recording(1);
    const b = new DynamicBatcher(run, { windowMs: 0, maxBatchSize: 10 });
    await Promise.all([b.submit([1]), b.submit([2])]);
    expect(batches).toEqual([[1, 2]]);
    await expect(b.submit([])).resolves.toEqual([]);
  });

  it('maxInFlight 2 hands the next batch to the runner while one runs, and never more', async () => {
    let running = 0;
    let most = 0;
    const batches: number[][] = [];
    const run = async (items: number[]) => {
      batches.push(items);
      most = Math.max(most, ++running);
      await sleep(20);
      running--;
      return items;
    };
    const b = new DynamicBatcher(run, { windowMs: 1, maxBatchSize: 100, maxInFlight: 2 });
    const first = b.submit([1]);
    await sleep(5); // the first batch runs
    const second = b.submit([2]);
    await sleep(5); // the second one was handed over before the first finished
    expect(running).toBe(2);
    const rest = Promise.all([b.submit([3]), b.submit([4])]);
    await Promise.all([first, second, rest]);
    expect(most).toBe(2);
    expect(batches).toEqual([[1], [2], [3, 4]]);
  });

  it('an idle runner starts at once; the window gathers requests only while a batch runs', async () => {
    const { batches, run } = recording(40);
    const b = new DynamicBatcher(run, { windowMs: 25, maxBatchSize: 100, maxInFlight: 2 });
    const t0 = performance.now();
    const first = b.submit([1]);
    await sleep(5);
    expect(batches).toEqual([[1]]); // started without waiting 25 ms
    const during = [b.submit([2])];
    await sleep(10);
    during.push(b.submit([3])); // still within the window opened by [2]
    await Promise.all([first, ...during]);
    expect(batches).toEqual([[1], [2, 3]]);
    expect(performance.now() - t0).toBeLessThan(200);
  });
});
