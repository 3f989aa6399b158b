// RSS per concurrent training (issue 14): npx tsx bench/training-rss.ts N [algorithm]; N trainings at once through trainInWorker
import { trainInWorker } from '../src/ml/trainer.ts';
const n = Number(process.argv[2] ?? 8);
const rows = 200;
const x1 = new Float64Array(rows).map((_, i) => i / rows);
const x2 = new Float64Array(rows).map((_, i) => Math.sin(i));
const y = new Float64Array(rows).map((_, i) => 2 * x1[i] + x2[i]);
const job = () => ({
  prepare: { task: 'regression', columns: [{ name: 'x1', kind: 'numeric' as const, values: x1 }, { name: 'x2', kind: 'numeric' as const, values: x2 }], label: { name: 'y', kind: 'numeric' as const, values: y }, preprocess: {}, testSize: 0.25, testSampling: 'random' },
  // a slow-ish algorithm so all N are alive at once
  algorithm: process.argv[3] ?? 'random_forest', hyperparams: process.argv[3] === 'linear' ? {} : { n_estimators: 200 }, search: null, search_params: {}, search_args: {}, yColumn: 'y',
});
const base = process.memoryUsage().rss;
let peak = base;
const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const t0 = performance.now();
await Promise.all(Array.from({ length: n }, () => trainInWorker(job() as never)));
clearInterval(t);
const mb = (b: number) => Math.round(b / 1048576);
console.log(JSON.stringify({ n, baseMB: mb(base), peakMB: mb(peak), perTrainingMB: Math.round((peak - base) / n / 1048576), seconds: +((performance.now() - t0) / 1000).toFixed(1) }));
