import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from '../src/auth/jwt.ts';
import type { Gateway } from '../src/gateway.ts';
import { callerOf } from './auth.ts';
import type { BodyKind, HttpResponse } from '../src/rest/rpc.ts';
import type { RestInput } from '../src/rest/execute.ts';
import { ApiError } from '../src/errors.ts';

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

/** PostgREST's "no such function / relation in the schema cache" codes */
const NOT_IN_CACHE = new Set(['PGRST202', 'PGRST205']);
/** how long a miss waits for an announced reload, or for the announcement of an existing object */
const ANNOUNCED_RELOAD_WAIT_MS = 2000;

type Executor = (gw: Gateway, identity: Identity, name: string, input: RestInput) => Promise<HttpResponse>;

/** A PostgREST resource route (/rpc/:name, /:name): identify the caller, run the core, send. */
export function restRoute(app: FastifyInstance, url: string, execute: Executor): void {
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url,
    handler: async (request, reply) => {
      const { name } = request.params as { name: string };
      const input = restInput(request, reply);
      try {
        return send(reply, await execute(app.gateway, callerOf(request), name, input));
      } catch (e) {
        // Not in the schema cache. If it exists in the database, a `NOTIFY pgrst, 'reload schema'`
        // sent just before this request (a script's psql, then curl) may still be on its way: wait
        // (bounded) for that reload and plan once more. Without a NOTIFY it stays unpublished, as
        // under PostgREST. Planning ran no SQL, so planning again is safe.
        if (!(e instanceof ApiError) || !NOT_IN_CACHE.has(e.body.code)) throw e;
        const cache = app.gateway.cache;
        const before = cache.maybeCurrent;
        // a name the cache knows (a call with other arguments, say) is not waiting for a reload
        if (before?.knowsName(name)) throw e;
        if (!cache.announced && !(await cache.existsInDatabase(name).catch(() => false))) throw e;
        await cache.settleAnnounced(ANNOUNCED_RELOAD_WAIT_MS);
        if (cache.maybeCurrent === before) throw e;
        return send(reply, await execute(app.gateway, callerOf(request), name, input));
      }
    },
  });
}
