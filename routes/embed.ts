import type { FastifyInstance } from 'fastify';
import { callerContext } from '../src/rest/context.ts';
import { identify } from '../src/rest/execute.ts';
import { modelSchemas } from '../src/ml/api-schemas.ts';

export default async function embedRoutes(app: FastifyInstance): Promise<void> {
  const gw = app.gateway;
  app.post('/models/embed', { schema: { body: modelSchemas.EmbedRequest } }, async (request, reply) => {
    const identity = await identify(gw, request.headers);
    request.authenticated = identity.authenticated;
    const ctx = callerContext({ identity, method: 'POST', path: '/models/embed', headers: request.headers, schema: gw.config.dbSchemas[0], extraSearchPath: gw.config.dbExtraSearchPath, snapshot: gw.cache.current, requestId: request.id });
    const body = request.body as { model: string; inputs: string | string[]; normalize?: boolean; pooling?: 'mean' | 'cls' };
    // a client that leaves takes its queued inputs with it
    const controller = new AbortController();
    reply.raw.once('close', () => !reply.raw.writableFinished && controller.abort());
    // the embedder reads the caller's cache as the caller first: a role PostgreSQL refuses is
    // answered 401/403 as /rpc answers it, before anything is computed (PgEmbeddingCache.refuses)
    const r = await gw.embedderFor(ctx).embed(body.model, body.inputs, { normalize: body.normalize, pooling: body.pooling, signal: controller.signal });
    if (r.truncated > 0) reply.header('X-Truncated-Inputs', String(r.truncated));
    // Float32Array#join prints each value's shortest float64 form, the same text JSON would, without
    // building an array of numbers first
    const rows = r.embeddings.map((e) => '[' + e.join(',') + ']');
    reply.type('application/json; charset=utf-8');
    return reply.send(`{"model":${JSON.stringify(r.model)},"dimensions":${r.dimensions},"embeddings":[${rows.join(',')}]}`);
  });
}
