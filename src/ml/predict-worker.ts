/** Worker thread of predict-threads.ts: evaluates its share of a batch into shared memory. */
import { parentPort } from 'node:worker_threads';
import { evaluateFlat } from './predict-flat.ts';
import type { SplitReply, SplitRequest } from './predict-threads.ts';

const port = parentPort!;
port.on('message', (req: SplitRequest) => {
  let reply: SplitReply;
  try {
    evaluateFlat(req.flat, req.x, req.cols, req.from, req.to, req.out);
    reply = { id: req.id };
  } catch (e) {
    reply = { id: req.id, error: (e as Error).message };
  }
  port.postMessage(reply);
});
port.postMessage({ id: 0 } satisfies SplitReply);
