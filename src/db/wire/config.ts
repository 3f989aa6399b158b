/** Connection settings from a postgres:// URI, for the pipeline client (plain TCP or a Unix socket; no TLS). */

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
}

const TLS_MODES = new Set(['require', 'verify-ca', 'verify-full']);

export class UnsupportedConfigError extends Error {}

export function parseWireUri(uri: string, applicationName = 'pgml-gateway'): WireConfig {
  const u = new URL(uri);
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new UnsupportedConfigError(`not a postgres:// URI: ${u.protocol}`);
  const q = u.searchParams;
  const sslmode = q.get('sslmode') ?? (q.get('ssl') === 'true' ? 'require' : null);
  if (sslmode && TLS_MODES.has(sslmode)) {
    throw new UnsupportedConfigError(`PGML_DB_CLIENT=pipeline does not support TLS (sslmode=${sslmode}); use the default client (unset PGML_DB_CLIENT) for TLS connections`);
  }
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
  };
}
