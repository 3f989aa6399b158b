import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../src/config.ts';
import { Gateway } from '../src/gateway.ts';
import { ApiError, apiError } from '../src/errors.ts';
import { toHttp } from '../src/errors.ts';
import { nestsDeeperThan } from '../src/rest/json-body.ts';
import rpcRoutes from './rpc.ts';
import healthRoutes from './health.ts';
import openapiRoutes from './openapi.ts';
import modelRoutes from './models.ts';
import embedRoutes from './embed.ts';
import metricsRoutes from './metrics.ts';
import tableRoutes from './tables.ts';
import dashboardRoutes from './dashboard.ts';
import { authenticateRoutes } from './auth.ts';

declare module 'fastify' {
  interface FastifyInstance {
    gateway: Gateway;
  }
  interface FastifyRequest {
    /** the raw JSON text of a JSON body, when there was one */
    rawJson?: string;
    /** set once the caller is identified: decides 401 vs 403 on permission errors */
    authenticated?: boolean;
  }
}

export interface ServerOptions {
  logger?: boolean | object;
  /** wait for the database at start (tests) or serve 503s until it answers (production) */
  waitForDatabase?: boolean;
}

export function sendApiError(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply.code(err.status).headers(err.headers).type('application/json; charset=utf-8').send(JSON.stringify(err.body));
}

function registerBodyParsers(app: FastifyInstance, config: Config): void {
  app.removeAllContentTypeParsers();
  const parseJson = (req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    if (nestsDeeperThan(text, config.maxJsonDepth)) {
      return done(apiError(400, 'PGRST102', 'JSON body nested too deeply', `Arrays and objects nest deeper than ${config.maxJsonDepth} levels`, 'Flatten the document or raise PGML_MAX_JSON_DEPTH'), undefined);
    }
    try {
      const parsed = JSON.parse(text);
      req.rawJson = text;
      done(null, parsed);
    } catch (e) {
      done(apiError(400, 'PGRST102', 'Empty or invalid json', (e as Error).message, 'Send a valid JSON document with Content-Type: application/json'), undefined);
    }
  };
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJson);
  app.addContentTypeParser(/^application\/[a-z0-9.+-]*\+json$/, { parseAs: 'string' }, parseJson);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  app.addContentTypeParser(['text/plain', 'application/xml', 'text/xml'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('*', (req, _payload, done) => {
    done(apiError(415, 'PGRST107', `Content-Type not acceptable: ${req.headers['content-type']}`, null, 'Use application/json, application/x-www-form-urlencoded, text/plain or application/octet-stream'), undefined);
  });
}

/** Fastify's own errors (body too large, bad media type, ...) in PostgREST's body. */
function frameworkError(err: { code?: string; statusCode?: number; message: string }, maxBody: number): ApiError {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return apiError(413, 'PGRST102', 'Request body too large', `The body is larger than ${maxBody} bytes`, 'Send a smaller body or raise PGML_MAX_BODY_BYTES');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return apiError(415, 'PGRST107', err.message);
    case 'FST_ERR_VALIDATION':
      return apiError(400, 'PGML400', 'Invalid request body', err.message, 'See the request schema in the OpenAPI document at GET /');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return apiError(400, 'PGRST102', 'Empty or invalid json');
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return apiError(err.statusCode, 'PGRST100', err.message);
  return apiError(500, 'PGML500', 'Internal server error', err.message);
}

/** PostgREST's admin server: /metrics, /live, /ready on their own port, sharing the gateway. */
export async function buildAdminServer(main: FastifyInstance): Promise<FastifyInstance> {
  const admin = Fastify({ logger: false });
  admin.decorate('gateway', main.gateway);
  await admin.register(healthRoutes);
  await admin.register(metricsRoutes, { tenantDetail: true });
  return admin;
}

export async function buildServer(config: Config, opts: ServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel },
    bodyLimit: config.maxBodyBytes,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 },
    // bodies are validated as sent: no silent coercion or removal of unknown keys
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  });
  const gateway = new Gateway(config, app.log);
  app.decorate('gateway', gateway);
  registerBodyParsers(app, config);

  app.setErrorHandler((err, request, reply) => {
    const e = err as unknown as { code?: string; statusCode?: number; message: string };
    const mapped = err instanceof ApiError ? err : typeof e.code === 'string' && e.code.startsWith('FST_') ? frameworkError(e, config.maxBodyBytes) : toHttp(err, request.authenticated ?? false);
    if (mapped.status >= 500) request.log.error({ err }, 'request failed');
    return sendApiError(reply, mapped);
  });
  app.setNotFoundHandler((request, reply) =>
    sendApiError(reply, apiError(404, 'PGRST125', 'Invalid path specified in request URL', `${request.method} ${request.url.split('?')[0]} is not an endpoint`, 'See GET / for the OpenAPI description of this API')),
  );
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/live' || request.url === '/ready' || request.url === '/metrics' || /^\/dashboard(?:[/?]|$)/.test(request.url)) return;
    if (!gateway.cache.ready) {
      const err = apiError(503, 'PGRST002', 'Could not query the database for the schema cache. Retrying.', null, null);
      err.headers['Retry-After'] = '1';
      return sendApiError(reply, err);
    }
  });
  // while draining, responses close their connection: an idle keep-alive socket would otherwise hold close() open
  app.addHook('onSend', async (_request, reply) => {
    if (gateway.draining) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    gateway.metrics.httpRequests.inc(labels);
    gateway.metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });
  app.addHook('onClose', async () => gateway.close());

  await app.register(healthRoutes);
  if (config.adminPort === undefined) await app.register(metricsRoutes);
  await app.register(dashboardRoutes);
  await app.register(async (api) => {
    authenticateRoutes(api);
    await api.register(openapiRoutes);
    await api.register(rpcRoutes);
    await api.register(embedRoutes);
    await api.register(modelRoutes);
    await api.register(tableRoutes);
  });
  await gateway.start({ waitForDatabase: opts.waitForDatabase ?? true });
  return app;
}
