import type { FastifyInstance } from 'fastify';

/** /metrics: aggregates on the public port; with `tenantDetail` (the admin port) also per-project series. */
export default async function metricsRoutes(app: FastifyInstance, opts: { tenantDetail?: boolean }): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    const metrics = app.gateway.metrics;
    reply.type(metrics.registry.contentType);
    return reply.send(opts.tenantDetail ? await metrics.all() : await metrics.registry.metrics());
  });
}
