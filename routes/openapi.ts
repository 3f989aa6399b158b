import type { FastifyInstance } from 'fastify';
import { buildOpenApi } from '../src/rest/openapi.ts';
import { pickSchema } from '../src/rest/context.ts';

export default async function openapiRoutes(app: FastifyInstance): Promise<void> {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/',
    handler: async (request, reply) => {
      const schema = pickSchema(request.method, request.headers, app.gateway.config.dbSchemas);
      const doc = buildOpenApi(app.gateway.cache.current, schema, app.gateway.config);
      reply.type('application/openapi+json; charset=utf-8');
      return request.method === 'HEAD' ? reply.send() : reply.send(JSON.stringify(doc));
    },
  });
}
