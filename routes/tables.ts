import type { FastifyInstance } from 'fastify';
import { identify } from '../src/rest/execute.ts';
import { executeTable } from '../src/rest/tables/execute.ts';
import { restInput, send } from './request.ts';

/** /{table|view}: registered last, so every fixed route keeps its path. */
export default async function tableRoutes(app: FastifyInstance): Promise<void> {
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/:name',
    handler: async (request, reply) => {
      const identity = await identify(app.gateway, request.headers);
      request.authenticated = identity.authenticated;
      const { name } = request.params as { name: string };
      return send(reply, await executeTable(app.gateway, identity, name, restInput(request, reply)));
    },
  });
}
