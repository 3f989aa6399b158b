import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread running `url`. A .ts worker (running from source under tsx) gets a
 * small bootstrap that registers tsx's loader first: on Node 20, `--import` loaders in a
 * worker's execArgv are not active yet when the worker's entry module is loaded.
 */
export function spawnWorker(url: URL): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url);
  const cjsApi = createRequire(import.meta.url).resolve('tsx/esm/api');
  const esmApi = pathToFileURL(cjsApi.replace(/index\.cjs$/, 'index.mjs')).href;
  const bootstrap = `import(${JSON.stringify(esmApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { eval: true });
}
