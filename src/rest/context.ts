import type { IncomingHttpHeaders } from 'node:http';
import type { CallerContext } from '../db/as-caller.ts';
import type { Identity } from '../auth/jwt.ts';
import type { Snapshot } from '../schema/cache.ts';
import { apiError } from '../errors.ts';
import { ident } from './sql.ts';

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim();
    let v = part.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    try {
      v = decodeURIComponent(v);
    } catch {
      /* keep raw */
    }
    if (k) out[k] = v;
  }
  return out;
}

export function lowerCaseHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

export function searchPath(schema: string, extra: string[]): string {
  return [schema, ...extra.filter((s) => s !== schema)].map(ident).join(', ');
}

export function callerContext(opts: {
  identity: Identity;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  schema: string;
  extraSearchPath: string[];
  snapshot: Snapshot;
  requestId?: string;
}): CallerContext {
  const settings: [string, string][] = [['search_path', searchPath(opts.schema, opts.extraSearchPath)], ...opts.snapshot.roleSettings(opts.identity.role)];
  if (opts.requestId) settings.push(['request.id', opts.requestId]);
  return {
    role: opts.identity.role,
    claims: opts.identity.claims,
    method: opts.method,
    path: opts.path,
    headers: lowerCaseHeaders(opts.headers),
    cookies: parseCookies(opts.headers.cookie),
    settings,
  };
}

/** Accept-Profile (reads) / Content-Profile (writes) pick one of the exposed schemas. */
export function pickSchema(method: string, headers: IncomingHttpHeaders, schemas: string[]): string {
  const header = method === 'GET' || method === 'HEAD' ? headers['accept-profile'] : headers['content-profile'];
  const wanted = Array.isArray(header) ? header[0] : header;
  if (wanted === undefined || wanted === '') return schemas[0];
  if (!schemas.includes(wanted)) {
    throw apiError(406, 'PGRST106', `The schema must be one of the following: ${schemas.join(', ')}`);
  }
  return wanted;
}

export function wantsSingleObject(accept: string | undefined): boolean {
  return !!accept && /application\/vnd\.pgrst\.object(\+json)?/i.test(accept);
}
