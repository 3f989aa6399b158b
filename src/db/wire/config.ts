/** Connection settings from a postgres:// URI, for the pipeline client (TCP with or without TLS, or a Unix socket). */
import { tlsSettings, type TlsSettings } from './tls.ts';

export interface WireConfig {
  host: string;
  port: number;
  /** directory of a Unix socket when the URI names one (?host=/var/run/postgresql) */
  socketDir: string | null;
  user: string;
  password: string | null;
  database: string;
  /** startup parameters sent to the server besides user and database */
  startup: Record<string, string>;
  tls: TlsSettings;
}

export class UnsupportedConfigError extends Error {}

export function parseWireUri(uri: string, applicationName = 'pgml-gateway'): WireConfig {
  const u = new URL(uri);
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new UnsupportedConfigError(`not a postgres:// URI: ${u.protocol}`);
  const q = u.searchParams;
  const tls = tlsSettings(q);
  const hostParam = q.get('host');
  const socketDir = hostParam && hostParam.startsWith('/') ? hostParam : null;
  const user = decodeURIComponent(u.username) || process.env.PGUSER || 'postgres';
  const startup: Record<string, string> = { application_name: q.get('application_name') ?? applicationName };
  const options = q.get('options');
  if (options) startup.options = options;
  return {
    host: socketDir ? '' : (hostParam ?? (u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1')),
    port: Number(u.port || q.get('port') || 5432),
    socketDir,
    user,
    password: u.password ? decodeURIComponent(u.password) : (process.env.PGPASSWORD ?? null),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || user,
    startup,
    // TLS over a Unix socket means nothing to PostgreSQL: it refuses the SSL request there
    tls: socketDir ? { ...tls, mode: 'disable' } : tls,
  };
}
