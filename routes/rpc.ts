import type { FastifyInstance } from 'fastify';
import { executeRpc, identify } from '../src/rest/execute.ts';
import { restInput, send } from './request.ts';

export default async function rpcRoutes(app: FastifyInstance): Promise<void> {
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/rpc/:name',
    handler: async (request, reply) => {
      const identity = await identify(app.gateway, request.headers);
      request.authenticated = identity.authenticated;
      const { name } = request.params as { name: string };
      return send(reply, await executeRpc(app.gateway, identity, name, restInput(request, reply)));
    },
  });
}
