import type { FastifyInstance } from 'fastify';
import { executeRpc } from '../src/rest/execute.ts';
import { restRoute } from './request.ts';

export default async function rpcRoutes(app: FastifyInstance): Promise<void> {
  restRoute(app, '/rpc/:name', executeRpc);
}
