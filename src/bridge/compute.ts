/** Computes a round's reported calls in batches: all embeds of a model at once, all predicts of a model at once. */
import { RequestAborted, withCaller, type CallerContext } from '../db/as-caller.ts';
import type { Pool } from '../db/pool.ts';
import type { Embedder } from '../embed/index.ts';
import { apiError } from '../errors.ts';
import type { ModelCache } from '../ml/serving.ts';
import { featuresToRow, predictRows } from '../ml/serving.ts';
import { realArrayLiteral, type BridgeCall } from './calls.ts';
import type { Metrics } from '../metrics.ts';
import type { WirePool } from '../db/wire/pool.ts';

const EMBED_CHUNK = 512;

export interface BridgeDeps {
  metrics?: Metrics;
  pool: Pool;
  wirePool?: WirePool | null;
  models: ModelCache;
  embedderFor(ctx: CallerContext): Embedder;
}

/** Calls come validated (report.ts). A request that is gone (signal) stops between batches. */
export async function computeCalls(deps: BridgeDeps, ctx: CallerContext, calls: BridgeCall[], results: Map<string, string>, signal?: AbortSignal): Promise<void> {
  const live = () => {
    if (signal?.aborted) throw new RequestAborted();
  };
  for (const c of calls) deps.metrics?.bridgeCalls.inc({ fn: c.fn });
  const embeds = new Map<string, Extract<BridgeCall, { fn: 'embed' }>[]>();
  const predicts = new Map<number, Extract<BridgeCall, { fn: 'predict' | 'predict_proba' }>[]>();
  for (const c of calls) {
    if (c.fn === 'embed') {
      const group = `${c.model}\u0000${JSON.stringify(c.kwargs ?? {})}`;
      embeds.set(group, [...(embeds.get(group) ?? []), c]);
    } else predicts.set(c.model_id, [...(predicts.get(c.model_id) ?? []), c]);
  }
  const embedder = deps.embedderFor(ctx);
  for (const group of embeds.values()) {
    const { model, kwargs } = group[0];
    const pooling = kwargs?.pooling === 'cls' ? 'cls' : 'mean';
    const normalize = kwargs?.normalize === undefined ? true : Boolean(kwargs.normalize);
    // the embedder's own per-request limit applies to each chunk; chunks still batch together
    const chunks: (typeof group)[] = [];
    for (let i = 0; i < group.length; i += EMBED_CHUNK) chunks.push(group.slice(i, i + EMBED_CHUNK));
    live();
    const outs = await Promise.all(chunks.map((chunk) => embedder.embed(model, chunk.map((c) => c.input), { pooling, normalize, signal })));
    chunks.forEach((chunk, j) => chunk.forEach((c, i) => results.set(c.key, realArrayLiteral(outs[j].embeddings[i]))));
  }
  for (const [modelId, group] of predicts) {
    live();
    // the caller must be able to see the model: RLS decides, as for every other read
    const loaded = await withCaller(deps.pool, ctx, { readOnly: true }, async (tx) => {
      const visible = await tx`select 1 from pgml.models where id = ${modelId} and status = 'successful'`;
      if (visible.length === 0) throw apiError(404, 'PGML404', `model ${modelId} not found`, null, 'SELECT id, name FROM pgml.trained_models lists the models you can use');
      return deps.models.get(tx, String(modelId));
    });
    const rows = group.map((c) => featuresToRow(loaded.meta.columns, c.features.map((v) => (v === null ? null : v))));
    const out = await predictRows(loaded, rows);
    const classes = loaded.meta.classes;
    const numericLabels = classes?.every((c) => typeof c === 'number' || typeof c === 'boolean');
    group.forEach((c, i) => {
      if (c.fn === 'predict_proba') {
        if (!out.probabilities) throw apiError(400, 'PGML400', `pgml.predict_proba needs a classification model; model ${modelId} is ${loaded.meta.task}`);
        results.set(c.key, realArrayLiteral(out.probabilities.subarray(i * out.k, (i + 1) * out.k)));
      } else {
        let v = out.values[i];
        if (loaded.meta.task === 'classification' && numericLabels) v = Number(classes![v]);
        results.set(c.key, realArrayLiteral([v]));
      }
    });
  }
}
