import type { FastifyInstance } from 'fastify';
import { executeTable } from '../src/rest/tables/execute.ts';
import { restRoute } from './request.ts';

/** /{table|view}: registered last, so every fixed route keeps its path. */
export default async function tableRoutes(app: FastifyInstance): Promise<void> {
  restRoute(app, '/:name', executeTable);
}
