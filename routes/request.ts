import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from '../src/auth/jwt.ts';
import type { Gateway } from '../src/gateway.ts';
import { callerOf } from './auth.ts';
import type { BodyKind, HttpResponse } from '../src/rest/rpc.ts';
import type { RestInput } from '../src/rest/execute.ts';

function bodyKind(request: FastifyRequest): BodyKind {
  if (request.body === undefined || request.body === null && request.rawJson === undefined) return 'none';
  const ct = (request.headers['content-type'] ?? '').toLowerCase();
  if (ct.startsWith('application/x-www-form-urlencoded')) return 'form';
  if (ct.startsWith('text/') || ct.includes('xml')) return 'text';
  if (ct.startsWith('application/octet-stream')) return 'binary';
  return 'json';
}

/** Fastify request → the core's transport-free input; aborts when the client goes away. */
export function restInput(request: FastifyRequest, reply: FastifyReply): RestInput {
  const url = request.raw.url ?? '/';
  const q = url.indexOf('?');
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return {
    method: request.method,
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? [] : [...new URLSearchParams(url.slice(q + 1))],
    headers: request.headers,
    bodyKind: bodyKind(request),
    body: request.body,
    rawBody: request.rawJson,
    requestId: request.id,
    signal: controller.signal,
  };
}

export function send(reply: FastifyReply, res: HttpResponse): FastifyReply {
  reply.code(res.status).headers(res.headers);
  return res.body === null ? reply.send() : reply.send(res.body);
}

type Executor = (gw: Gateway, identity: Identity, name: string, input: RestInput) => Promise<HttpResponse>;

/** A PostgREST resource route (/rpc/:name, /:name): identify the caller, run the core, send. */
export function restRoute(app: FastifyInstance, url: string, execute: Executor): void {
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url,
    handler: async (request, reply) => {
      const { name } = request.params as { name: string };
      return send(reply, await execute(app.gateway, callerOf(request), name, restInput(request, reply)));
    },
  });
}
