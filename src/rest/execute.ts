import type { IncomingHttpHeaders } from 'node:http';
import { runBridged } from '../bridge/rounds.ts';
import type { Gateway } from '../gateway.ts';
import type { Identity } from '../auth/jwt.ts';
import { ApiError } from '../errors.ts';
import { parseRangeHeader } from './grammar.ts';
import { callerContext, pickSchema, wantsSingleObject } from './context.ts';
import { parsePrefer } from './prefer.ts';
import { planRpc, shapeRpcResponse, type BodyKind, type HttpResponse, type RpcResult } from './rpc.ts';
import { qualifiedPreRequest } from './pre-request.ts';

/** PostgreSQL's NAMEDATALEN - 1: longer identifiers are truncated, not refused */
const MAX_ROLE_BYTES = 63;

export interface RestInput {
  method: string;
  /** URL path without the query string */
  path: string;
  /** decoded query pairs in order */
  query: [string, string][];
  headers: IncomingHttpHeaders;
  bodyKind: BodyKind;
  body: unknown;
  rawBody?: string;
  requestId?: string;
  signal?: AbortSignal;
}

/**
 * Identity of the caller from the Authorization header (throws 401 ApiErrors). A request never
 * runs as the connecting role: set_config('role', 'none') would reset to it, and it is a member
 * of every request role, so it would see every tenant's rows.
 */
export async function identify(gw: Gateway, headers: IncomingHttpHeaders): Promise<Identity> {
  const h = headers.authorization;
  const identity = await gw.auth.identify(Array.isArray(h) ? h[0] : h);
  // PostgreSQL would refuse a NUL byte with a 22P05 and silently truncate a longer name to
  // NAMEDATALEN - 1 bytes, running the request as a different role: both are invalid roles
  if (identity.role.includes('\u0000') || Buffer.byteLength(identity.role) > MAX_ROLE_BYTES) {
    throw new ApiError(401, { code: 'PGRST301', message: 'JWT role claim is not a valid role name', details: `A role name is at most ${MAX_ROLE_BYTES} bytes and has no NUL character`, hint: null }, {
      'WWW-Authenticate': 'Bearer error="invalid_token", error_description="invalid role"',
    });
  }
  if (identity.role.toLowerCase() === 'none') {
    // as PostgREST answers for the quoted role "none", which does not exist
    throw new ApiError(401, { code: 'PGRST301', message: `role "${identity.role}" does not exist`, details: 'The JWT role claim names a role that does not exist', hint: null }, {
      'WWW-Authenticate': 'Bearer error="invalid_token", error_description="role does not exist"',
    });
  }
  if (identity.role === gw.sessionRole) {
    throw new ApiError(403, { code: '42501', message: `permission denied to set role "${identity.role}"`, details: "A request never runs as the gateway's own connecting role", hint: 'Issue tokens for a request role (anon, authenticated, ...)' });
  }
  return identity;
}

/** What every /rpc and table request needs before planning: cache snapshot, schema, preferences, caller. */
export function requestScope(gw: Gateway, identity: Identity, input: RestInput) {
  const snapshot = gw.cache.current;
  const schema = pickSchema(input.method, input.headers, gw.config.dbSchemas);
  const prefer = parsePrefer(input.headers.prefer);
  const ctx = callerContext({ identity, method: input.method, path: input.path, headers: input.headers, schema, extraSearchPath: gw.config.dbExtraSearchPath, snapshot, requestId: input.requestId });
  /** the transaction options both paths share; the plan adds readOnly */
  const run = { preRequest: qualifiedPreRequest(gw.config.dbPreRequest, schema), rollback: prefer.tx === 'rollback', signal: input.signal };
  return { snapshot, schema, prefer, ctx, run };
}

export async function executeRpc(gw: Gateway, identity: Identity, name: string, input: RestInput): Promise<HttpResponse> {
  const { snapshot, schema, prefer, ctx, run } = requestScope(gw, identity, input);
  const plan = planRpc(snapshot, {
    method: input.method,
    schema,
    name,
    query: input.query,
    bodyKind: input.bodyKind,
    body: input.body,
    rawBody: input.rawBody,
    prefer,
    singleObject: wantsSingleObject(input.headers.accept),
    range: input.method === 'GET' || input.method === 'HEAD' ? parseRangeHeader(input.headers.range) : undefined,
    maxRows: gw.config.dbMaxRows,
  });
  const rows = await runBridged(gw, gw.bridgeNotices, ctx, plan.statement, { ...run, readOnly: plan.readOnly });
  return shapeRpcResponse(plan, rows[0] as unknown as RpcResult, input.method, prefer);
}
