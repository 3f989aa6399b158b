/**
 * "The limit": the gateway's per-request database work done by hand with node-postgres behind a
 * bare node:http server. Run as its own process (see raw-pg.ts). Per request:
 *   verify the HS256 bearer token (HMAC, no cache), parse the JSON body, take a pooled connection, run
 *   BEGIN READ ONLY; set_config(role, request.jwt.claims, request.method, request.path,
 *   request.headers, request.cookies, search_path); the gateway's SELECT building the JSON body; COMMIT
 * and answer with the body. RAW_PG_MODE picks how the transaction reaches PostgreSQL:
 *   pipelined: one simple-protocol message holding the four statements (values as
 *     escaped literals): one network round trip, but parsed and planned every time;
 *   prepared (default): four extended-protocol queries on named prepared statements, one after the other
 *     (node-postgres does not pipeline): four round trips, no parse/plan after the first time.
 * Environment: RAW_PG_URI, RAW_PG_POOL, RAW_PG_PORT, RAW_PG_JWT_SECRET, RAW_PG_FUNCTIONS (JSON RawFunction[]).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';

export interface RawFunction {
  schema: string;
  name: string;
  args: { name: string; type: string }[];
  /** scalar: one value (body is that value); table: setof composite (body is an array of objects) */
  returns: 'scalar' | 'table';
}

const SETUP_SQL = 'select set_config(k, v, true) from json_each_text($1::text::json) as t(k, v)';

const ident = (s: string) => '"' + s.replace(/"/g, '""') + '"';
const literal = (s: string) => "'" + s.replace(/'/g, "''") + "'";

/** The same statement text src/rest/rpc.ts builds for a POST with all named arguments; `$1` is the JSON of the arguments. */
export function mainSql(fn: RawFunction, argsParam: string): string {
  const defs = fn.args.map((a) => `${ident(a.name)} ${a.type}`).join(', ');
  const call = `${ident(fn.schema)}.${ident(fn.name)}(${fn.args.map((a) => `${ident(a.name)} := pgrst_args.${ident(a.name)}`).join(', ')})`;
  const from = fn.args.length ? `json_to_record(${argsParam}::text::json) as pgrst_args(${defs}), lateral ` : '';
  const scalar = fn.returns === 'scalar';
  const source = scalar ? `${call} as "pgrst_call"(pgrst_scalar)` : `${call} as "pgrst_call"`;
  const columns = scalar ? '"pgrst_call".pgrst_scalar' : '"pgrst_call".*';
  const body = scalar ? `coalesce((json_agg(_postgrest_t.pgrst_scalar)->0)::text, 'null')` : `coalesce(json_agg(_postgrest_t), '[]')::text`;
  return (
    `with pgrst_source as materialized (select "pgrst_call".* from ${from}${source})` +
    ` select null::bigint as total_result_set, pg_catalog.count(_postgrest_t) as page_total, ${body} as body,` +
    ` nullif(current_setting('response.headers', true), '') as response_headers,` +
    ` nullif(current_setting('response.status', true), '') as response_status` +
    ` from (select ${columns} from pgrst_source "pgrst_call") _postgrest_t`
  );
}

function verifyHs256(token: string, key: Buffer): Record<string, unknown> | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const mac = createHmac('sha256', key).update(parts[0] + '.' + parts[1]).digest();
  const sig = Buffer.from(parts[2], 'base64url');
  if (sig.length !== mac.length || !timingSafeEqual(sig, mac)) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as { alg?: string };
    if (header.alg !== 'HS256') return null;
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) return null;
    return claims;
  } catch {
    return null;
  }
}

function settingsJson(role: string, claims: Record<string, unknown>, req: http.IncomingMessage, path: string): string {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return JSON.stringify({
    search_path: '"public"',
    role,
    'request.jwt.claims': JSON.stringify(claims),
    'request.method': req.method,
    'request.path': path,
    'request.headers': JSON.stringify(headers),
    'request.cookies': '{}',
  });
}

function main(): void {
  const functions = new Map((JSON.parse(process.env.RAW_PG_FUNCTIONS ?? '[]') as RawFunction[]).map((f) => [`/rpc/${f.name}`, { fn: f, text: mainSql(f, '$1') }]));
  const mode = process.env.RAW_PG_MODE === 'pipelined' ? 'pipelined' : 'prepared';
  const key = Buffer.from(process.env.RAW_PG_JWT_SECRET ?? '', 'utf8');
  const pool = new pg.Pool({ connectionString: process.env.RAW_PG_URI, max: Number(process.env.RAW_PG_POOL ?? 10), idleTimeoutMillis: 60_000 });
  pool.on('error', () => {});

  const reply = (res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = req.url ?? '/';
        const path = url.split('?')[0];
        if (path === '/ready') return reply(res, 200, '{"status":"ready"}');
        const entry = functions.get(path);
        if (!entry || req.method !== 'POST') return reply(res, 404, '{"message":"not found"}');
        const auth = req.headers.authorization ?? '';
        const claims = auth.startsWith('Bearer ') ? verifyHs256(auth.slice(7), key) : null;
        if (!claims || typeof claims.role !== 'string') return reply(res, 401, '{"message":"JWT invalid"}');
        let args: unknown;
        try {
          args = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reply(res, 400, '{"message":"invalid json"}');
        }
        const argsJson = JSON.stringify(args);
        const settings = settingsJson(claims.role, claims, req, path);
        const client = await pool.connect();
        let row: { body: string; page_total: string };
        try {
          if (mode === 'pipelined') {
            const text =
              `begin isolation level read committed read only;` +
              `select set_config(k, v, true) from json_each_text(${literal(settings)}::text::json) as t(k, v);` +
              `${mainSql(entry.fn, literal(argsJson))};` +
              `commit`;
            const results = (await client.query(text)) as unknown as pg.QueryResult[];
            row = results[2].rows[0] as typeof row;
          } else {
            await client.query('begin isolation level read committed read only');
            try {
              await client.query({ name: 'raw_setup', text: SETUP_SQL, values: [settings] });
              row = (await client.query({ name: `raw_${entry.fn.name}`, text: entry.text, values: [argsJson] })).rows[0] as typeof row;
              await client.query('commit');
            } catch (e) {
              await client.query('rollback').catch(() => {});
              throw e;
            }
          }
        } catch (e) {
          client.release(true);
          return reply(res, 500, JSON.stringify({ message: (e as Error).message }));
        }
        client.release();
        const headers: Record<string, string> = {};
        if (entry.fn.returns === 'table') {
          const n = Number(row.page_total);
          headers['content-range'] = n > 0 ? `0-${n - 1}/*` : '*/*';
        }
        reply(res, 200, row.body, headers);
      })().catch((e: unknown) => {
        if (!res.headersSent) reply(res, 500, JSON.stringify({ message: String(e) }));
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(Number(process.env.RAW_PG_PORT), '127.0.0.1');
  const shutdown = () => {
    server.close();
    server.closeAllConnections();
    void pool.end().finally(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

if (process.env.RAW_PG_PORT) main();
