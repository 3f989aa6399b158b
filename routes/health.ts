import type { FastifyInstance } from 'fastify';

export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/live', async (_req, reply) => reply.code(200).send({ status: 'live' }));
  app.get('/ready', async (_req, reply) => {
    const gw = app.gateway;
    const database = gw.cache.ready && !gw.draining ? await gw.pool.ping() : false;
    const ready = database && gw.ready;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', database, schemaCache: gw.cache.ready, draining: gw.draining });
  });
}
