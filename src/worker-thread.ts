import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

const bundles = new Map<string, Promise<string | null>>();

/**
 * Bundles a .ts worker entry once per process with esbuild (about 0.1 s, off the event loop)
 * into CommonJS source that a thread evaluates with no loader: a thread then costs an isolate
 * and the bundle, not a TypeScript loader of its own. Null when esbuild is unavailable.
 */
function bundle(url: URL): Promise<string | null> {
  let b = bundles.get(url.href);
  if (!b) {
    b = import('esbuild')
      .then(async (esbuild) => {
        const out = await esbuild.build({
          entryPoints: [fileURLToPath(url)], bundle: true, platform: 'node', format: 'cjs', target: 'node20',
          keepNames: true, write: false, logLevel: 'silent',
        });
        return out.outputFiles[0].text;
      })
      .catch(() => null);
    bundles.set(url.href, b);
  }
  return b;
}

/** Starts a worker thread running `url` without a per-thread loader (see bundle), falling back to spawnWorker. */
export async function spawnBundledWorker(url: URL): Promise<Worker> {
  if (!url.pathname.endsWith('.ts')) return new Worker(url);
  const code = await bundle(url);
  return code === null ? spawnWorker(url) : new Worker(code, { eval: true });
}
