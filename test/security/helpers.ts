/**
 * Shared machinery of the security batteries (jwt-battery, isolation, fuzz).
 *
 * Evidence that no SQL runs as a more privileged role and that no SQL text comes from user input
 * is gathered on both sides of the wire, because either alone can be fooled:
 *
 * 1. Gateway side, complete: `traceSql(app)` wraps the gateway's pool (`pool.transaction` and
 *    `pool.sql`) of that one test instance, without touching src/. Every statement text the
 *    gateway sends is recorded with the role its transaction switched to (read from the
 *    bind-parameter JSON of the setup statement `set_config(k, v, true) from json_each_text(...)`).
 *    Tests then assert (a) the set of roles a case ran as is a subset of what that case allows
 *    (an invalid token runs no transaction at all), and (b) `outsideQuotes(text)` of every
 *    statement never contains the fuzz marker: user input may reach SQL text only inside a
 *    correctly quoted literal or identifier (JSON path keys, aliases) or as a validated cast type
 *    name; everything else must be a bind parameter.
 * 2. Database side, independent of the gateway's own code: `installAudit(admin)` creates
 *    - `sec_audit.calls`: probe functions exposed over /rpc record `current_user` on every
 *      successful execution (through a SECURITY DEFINER recorder, so callers cannot forge rows);
 *    - `sec_audit.hit(tag)`: a function every fuzz/injection payload tries to call. It is callable
 *      by PUBLIC but lives in a schema that is never exposed, so only SQL text built from user
 *      input could ever call it; any row in `sec_audit.injected` is an injection;
 *    - an event trigger on `ddl_command_end` recording every DDL command with the role it ran as;
 *    - `sec_audit.canary`: one row only the superuser can write, with a trigger recording any
 *      write attempt that got as far as the table.
 *    `auditReport()` summarises them; batteries assert the canary is intact, nothing was injected,
 *    no DDL came from a request, and no audit row carries a privileged role.
 * 3. Error bodies and `pg_stat_activity.query` of the gateway's connections are sampled for the
 *    marker as a third, coarse check.
 */
import type { FastifyInstance } from 'fastify';
import type { Sql, TransactionSql } from 'postgres';
import { SignJWT, type JWTPayload } from 'jose';
import { SECRET } from '../helpers/gateway.ts';

/** PGML_RELIABILITY=1 runs the long variants (npm run test:reliability). */
export const RELIABILITY = /^(1|true|yes)$/i.test(process.env.PGML_RELIABILITY ?? '');
export const scale = (short: number, long: number): number => (RELIABILITY ? long : short);

/** Marker carried by every generated hostile string; must never appear unquoted in SQL text. */
export const MARKER = 'qzxv';

export interface TracedTx {
  mode: string;
  role?: string;
  texts: string[];
}

export interface SqlTrace {
  txs: TracedTx[];
  /** statements sent on the pool outside a caller transaction (catalog reads, listener) */
  direct: string[];
  /** the index to compare against, e.g. const mark = trace.mark(); ... trace.since(mark) */
  mark(): number;
  since(mark: number): TracedTx[];
  rolesSince(mark: number): Set<string>;
  restore(): void;
}

const SETUP_PREFIX = 'select set_config(k, v, true) from json_each_text';

function wrapSql<T extends object>(target: T, record: (text: string, params?: unknown[]) => void): T {
  return new Proxy(target, {
    apply(fn, thisArg, args: unknown[]) {
      const strings = args[0] as TemplateStringsArray | undefined;
      if (strings && Array.isArray(strings) && 'raw' in strings) record(strings.join('$?'));
      return Reflect.apply(fn as (...a: unknown[]) => unknown, thisArg, args);
    },
    get(obj, prop, receiver) {
      const v = Reflect.get(obj, prop, receiver);
      if (prop === 'unsafe' && typeof v === 'function') {
        return (text: string, params?: unknown[], opts?: unknown) => {
          record(text, params);
          return (v as (...a: unknown[]) => unknown).call(obj, text, params, opts);
        };
      }
      return typeof v === 'function' ? v.bind(obj) : v;
    },
  });
}

/** Records every statement the gateway of `app` sends, with the role of its transaction. */
export function traceSql(app: FastifyInstance): SqlTrace {
  const pool = app.gateway.pool as unknown as {
    transaction: <T>(mode: string, fn: (tx: TransactionSql) => Promise<T>) => Promise<T>;
    sql: Sql;
  };
  const origTransaction = pool.transaction;
  const origSql = pool.sql;
  const txs: TracedTx[] = [];
  const direct: string[] = [];
  pool.transaction = function <T>(mode: string, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
    return origTransaction.call(pool, mode, (tx: TransactionSql) => {
      const rec: TracedTx = { mode, texts: [] };
      txs.push(rec);
      const wrapped = wrapSql(tx, (text, params) => {
        rec.texts.push(text);
        if (text.startsWith(SETUP_PREFIX) && params && typeof params[0] === 'string') {
          try {
            const settings = JSON.parse(params[0]) as Record<string, string>;
            if (typeof settings.role === 'string') rec.role = settings.role;
          } catch {
            rec.role = '<unparseable setup>';
          }
        }
      });
      return fn(wrapped);
    }) as Promise<T>;
  } as typeof pool.transaction;
  Object.defineProperty(pool, 'sql', { value: wrapSql(origSql, (text) => direct.push(text)), writable: true, configurable: true });
  return {
    txs,
    direct,
    mark: () => txs.length,
    since: (m) => txs.slice(m),
    rolesSince: (m) => new Set(txs.slice(m).map((t) => t.role ?? '<no role switch>')),
    restore() {
      pool.transaction = origTransaction;
      Object.defineProperty(pool, 'sql', { value: origSql, writable: true, configurable: true });
    },
  };
}

/**
 * The text with single-quoted literals and double-quoted identifiers removed (standard SQL
 * quoting, '' and "" escapes; standard_conforming_strings is on). Returns null if a quote is left
 * open, which generated SQL must never do.
 */
export function outsideQuotes(text: string): string | null {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= text.length) return null;
        if (text[j] === ch) {
          if (text[j + 1] === ch) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      out += ch === "'" ? "''" : '""';
      i = j + 1;
    } else if (ch === '$' && text[i + 1] === '$') {
      const end = text.indexOf('$$', i + 2);
      if (end < 0) return null;
      out += '$$$$';
      i = end + 2;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

/**
 * Statement texts in which the marker appears outside quotes. A marker right after `::` is a
 * cast type name, which the grammar restricts to an identifier (as PostgREST does); those are
 * counted separately, not as violations.
 */
export function unquotedMarkers(texts: string[], marker = MARKER): { violations: string[]; casts: number } {
  const violations: string[] = [];
  let casts = 0;
  const re = new RegExp(marker, 'gi');
  for (const t of texts) {
    const rest = outsideQuotes(t);
    if (rest === null) {
      if (re.test(t)) violations.push(`unbalanced quotes: ${t.slice(0, 300)}`);
      re.lastIndex = 0;
      continue;
    }
    for (const m of rest.matchAll(re)) {
      const before = rest.slice(Math.max(0, m.index! - 80), m.index!);
      if (/::\s*[A-Za-z_][A-Za-z0-9_ ]*$/.test(before)) casts++;
      else violations.push(t.slice(0, 400));
    }
  }
  return { violations, casts };
}

/** Audit schema, probe functions and canary (see the header comment). Needs a superuser. */
export async function installAudit(admin: Sql): Promise<void> {
  await admin.unsafe(`
    create schema sec_audit;
    create table sec_audit.calls (id bigserial primary key, fn text not null, role text not null, session_role text not null, at timestamptz default clock_timestamp());
    create table sec_audit.injected (id bigserial primary key, tag text, role text, at timestamptz default clock_timestamp());
    create table sec_audit.ddl (id bigserial primary key, tag text, role text, objects text, query text, at timestamptz default clock_timestamp());
    create table sec_audit.canary (id int primary key, secret text not null);
    create table sec_audit.canary_writes (id bigserial primary key, op text, role text);
    insert into sec_audit.canary values (1, 'untouched');

    create function sec_audit.record(fn text, who text) returns void language sql security definer set search_path = pg_catalog as $$
      insert into sec_audit.calls (fn, role, session_role) values (fn, who, session_user)
    $$;
    create function sec_audit.hit(tag text default null) returns text language plpgsql volatile security definer set search_path = pg_catalog as $$
    begin
      insert into sec_audit.injected (tag, role) values (tag, coalesce(nullif(current_setting('role', true), 'none'), session_user::text));
      return 'hit';
    end $$;
    create function sec_audit.on_ddl() returns event_trigger language plpgsql security definer set search_path = pg_catalog as $$
    begin
      insert into sec_audit.ddl (tag, role, objects, query)
      select tg_tag, coalesce(nullif(current_setting('role', true), 'none'), session_user::text),
             (select string_agg(object_identity, ', ') from pg_event_trigger_ddl_commands()), left(current_query(), 300);
    end $$;
    create event trigger sec_audit_ddl on ddl_command_end execute function sec_audit.on_ddl();
    create function sec_audit.on_canary() returns trigger language plpgsql security definer set search_path = pg_catalog as $$
    begin
      insert into sec_audit.canary_writes (op, role) values (tg_op, coalesce(nullif(current_setting('role', true), 'none'), session_user::text));
      return coalesce(new, old);
    end $$;
    create trigger canary_writes before insert or update or delete on sec_audit.canary for each row execute function sec_audit.on_canary();
    create trigger canary_truncate before truncate on sec_audit.canary for each statement execute function sec_audit.on_canary();

    revoke all on all tables in schema sec_audit from public;
    revoke all on all functions in schema sec_audit from public;
    grant usage on schema sec_audit to public;
    grant execute on function sec_audit.record(text, text), sec_audit.hit(text) to public;
  `).simple();
}

export interface AuditReport {
  calls: { fn: string; role: string; n: number }[];
  injected: number;
  injectedTags: string[];
  ddlFromRequests: { tag: string; role: string; objects: string | null; query: string | null }[];
  canaryIntact: boolean;
  canaryWrites: number;
}

/** What the database saw since `sinceDdlId` (take it with ddlMark() after setup). */
export async function auditReport(admin: Sql, sinceDdlId: number): Promise<AuditReport> {
  const calls = (await admin`select fn, role, count(*)::int as n from sec_audit.calls group by fn, role order by fn, role`) as unknown as AuditReport['calls'];
  const inj = await admin`select tag from sec_audit.injected order by id`;
  const ddl = await admin`select tag, role, objects, query from sec_audit.ddl where id > ${sinceDdlId} order by id`;
  const canary = await admin`select secret from sec_audit.canary where id = 1`;
  const [{ n: canaryCount }] = await admin`select count(*)::int as n from sec_audit.canary`;
  const [{ n: writes }] = await admin`select count(*)::int as n from sec_audit.canary_writes`;
  return {
    calls,
    injected: inj.length,
    injectedTags: inj.slice(0, 10).map((r) => r.tag as string),
    // the bridge's own per-session temp table (as-caller.ts ENSURE_BRIDGE_TABLE, run as the
    // authenticator before the role switch) is gateway-produced DDL, not a request's
    // the gateway's own per-transaction bridge table (src/db/as-caller.ts), created as the connecting role
    ddlFromRequests: (ddl as unknown as AuditReport['ddlFromRequests']).filter((d) => !(d.role === 'authenticator' && /^(create temp table|grant select on pg_temp\.)\s*pgml_bridge_[0-9a-f]{24}\b/.test(d.query ?? ''))),
    canaryIntact: canary.length === 1 && canary[0].secret === 'untouched' && canaryCount === 1,
    canaryWrites: writes as number,
  };
}

export async function ddlMark(admin: Sql): Promise<number> {
  const [{ m }] = await admin`select coalesce(max(id), 0)::int as m from sec_audit.ddl`;
  return m as number;
}

/** Query texts of the gateway's connections right now (coarse third check). */
export async function activityTexts(admin: Sql): Promise<string[]> {
  const rows = await admin`select query from pg_stat_activity where datname = current_database() and usename = 'authenticator' and query is not null`;
  return rows.map((r) => r.query as string);
}

/** An HS256 token with the test secret (exp only when given). */
export async function hsToken(claims: JWTPayload, opts: { secret?: string | Uint8Array; alg?: string; header?: Record<string, unknown> } = {}): Promise<string> {
  const key = typeof opts.secret === 'string' || opts.secret === undefined ? new TextEncoder().encode(opts.secret ?? SECRET) : opts.secret;
  return new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256', ...(opts.header ?? {}) }).sign(key);
}

export const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Creates roles (idempotent; roles are cluster-wide) and grants them to the authenticator. */
export async function ensureRoles(admin: Sql, granted: string[], notGranted: string[] = []): Promise<void> {
  const all = [...granted, ...notGranted];
  await admin.unsafe(`do $$ begin
    ${all.map((r) => `if not exists (select from pg_roles where rolname = '${r}') then create role "${r}" nologin; end if;`).join('\n')}
  end $$;
  ${granted.length ? `grant ${granted.map((r) => `"${r}"`).join(', ')} to authenticator;` : ''}`).simple();
}

export interface KnownIssue {
  id: string;
  /** how the request looks */
  request: string;
  /** what came back */
  observed: string;
  cause: string;
}

/** Prints the battery's one-line summary (the lead builds a table from these lines). */
export function summary(battery: string, figures: Record<string, number | string>): void {
  console.log(`[security:${battery}] ${Object.entries(figures).map(([k, v]) => `${k}=${v}`).join(' ')}`);
}

export function reportKnownIssues(battery: string, issues: KnownIssue[]): void {
  for (const k of issues) console.log(`[security:${battery}] KNOWN_ISSUE ${k.id}: ${k.request} -> ${k.observed} (${k.cause})`);
}
