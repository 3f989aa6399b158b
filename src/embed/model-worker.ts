/** Worker thread entry: hosts the loaded models and serves runner.ts's requests. */
import { parentPort } from 'node:worker_threads';
import { Encoder } from './encoder.ts';
import type { WorkerReply, WorkerRequest } from './worker-protocol.ts';

const port = parentPort!;
const encoders = new Map<string, Promise<Encoder>>();

async function handle(req: WorkerRequest): Promise<void> {
  const send = (msg: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
  try {
    if (req.type === 'load') {
      const loading = Encoder.load(req.spec, req.threads);
      encoders.set(req.key, loading);
      loading.catch(() => encoders.get(req.key) === loading && encoders.delete(req.key));
      send({ type: 'loaded', id: req.id, info: (await loading).info });
    } else if (req.type === 'encode') {
      const encoder = await encoders.get(req.key);
      if (!encoder) throw new Error(`model '${req.key}' is not loaded in the worker`);
      const out = await encoder.encode(req.items);
      send({ type: 'result', id: req.id, ...out }, [out.data.buffer as ArrayBuffer, out.truncated.buffer as ArrayBuffer]);
    } else {
      const encoder = encoders.get(req.key);
      encoders.delete(req.key);
      await (await encoder?.catch(() => undefined))?.dispose();
      send({ type: 'unloaded', id: req.id });
    }
  } catch (err) {
    send({ type: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) });
  }
}

port.on('message', (req: WorkerRequest) => void handle(req));
