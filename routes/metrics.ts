import type { FastifyInstance } from 'fastify';

export default async function metricsRoutes(app: FastifyInstance): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    const registry = app.gateway.metrics.registry;
    reply.type(registry.contentType);
    return reply.send(await registry.metrics());
  });
}
