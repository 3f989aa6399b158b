/**
 * The one error module (a leaf: it imports no domain). PostgREST's error body, its SQLSTATE →
 * HTTP status mapping, and toHttp(): any failure → the HTTP answer. Domain errors (db, ml,
 * embed) know their own answer by implementing HttpMapped, so this module needs none of them.
 */

export interface ErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.message);
  }
}

export function apiError(status: number, code: string, message: string, details: string | null = null, hint: string | null = null): ApiError {
  return new ApiError(status, { code, message, details, hint });
}

/** Status for a PostgreSQL SQLSTATE, as PostgREST's documented table gives it. */
export function statusForSqlState(code: string, authenticated: boolean): number {
  if (/^PT\d{3}$/.test(code)) return Number(code.slice(2));
  switch (code) {
    case '23503':
    case '23505':
      return 409;
    case '25006':
      return 405;
    case '42883':
    case '42P01':
      return 404;
    case '42P17':
      return 500;
    case '42501':
      return authenticated ? 403 : 401;
    case 'P0001':
      return 400;
    case '53400':
      return 500;
  }
  switch (code.slice(0, 2)) {
    case '08':
      return 503;
    case '09':
      return 500;
    case '0L':
    case '0P':
      return 403;
    case '25':
      return 500;
    case '28':
      return 403;
    case '2D':
    case '38':
    case '39':
    case '3B':
    case '40':
      return 500;
    case '53':
      return 503;
    case '54':
    case '55':
    case '57':
    case '58':
    case 'F0':
    case 'HV':
    case 'P0':
    case 'XX':
      return 500;
  }
  return 400;
}

interface PgErrorLike {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export function isPgError(e: unknown): e is PgErrorLike {
  return !!e && typeof e === 'object' && typeof (e as PgErrorLike).code === 'string' && /^[0-9A-Z]{5}$/.test((e as PgErrorLike).code) && (e as { name?: string }).name === 'PostgresError';
}

/**
 * Maps a PostgreSQL error to PostgREST's response, including `RAISE SQLSTATE 'PGRST'` whose message
 * is the JSON body and whose detail is JSON {status, headers}.
 */
export function fromPgError(e: PgErrorLike, authenticated: boolean): ApiError {
  if (e.code === 'PGRST') return fromRaisedPgrst(e);
  const status = statusForSqlState(e.code, authenticated);
  const headers: Record<string, string> = status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {};
  return new ApiError(status, { code: e.code, message: e.message, details: e.detail ?? null, hint: e.hint ?? null }, headers);
}

function fromRaisedPgrst(e: PgErrorLike): ApiError {
  const invalid = () =>
    apiError(500, 'PGRST121', 'Could not parse JSON in the "RAISE SQLSTATE \'PGRST\'" error', `Invalid JSON value for MESSAGE: '${e.message}'`, 'MESSAGE must be a JSON object with obligatory keys: \'code\', \'message\' and optional keys: \'details\', \'hint\'.');
  let body: Record<string, unknown>;
  let detail: Record<string, unknown>;
  try {
    body = JSON.parse(e.message);
    detail = JSON.parse(e.detail ?? '');
  } catch {
    return invalid();
  }
  if (!body || typeof body !== 'object' || typeof body.code !== 'string' || typeof body.message !== 'string') return invalid();
  if (!detail || typeof detail !== 'object' || !Number.isInteger(detail.status)) {
    return apiError(500, 'PGRST121', 'Could not parse JSON in the "RAISE SQLSTATE \'PGRST\'" error', `Invalid JSON value for DETAIL: '${e.detail ?? ''}'`, 'DETAIL must be a JSON object with obligatory keys: \'status\', \'headers\'.');
  }
  const headers: Record<string, string> = {};
  if (detail.headers && typeof detail.headers === 'object') {
    for (const [k, v] of Object.entries(detail.headers as Record<string, unknown>)) headers[k] = String(v);
  }
  const str = (v: unknown) => (v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v));
  return new ApiError(detail.status as number, { code: body.code, message: body.message, details: str(body.details), hint: str(body.hint) }, headers);
}

/** A domain error that knows its HTTP answer (authenticated decides 401 vs 403 where it matters). */
export interface HttpMapped {
  toApiError(authenticated: boolean): ApiError;
}

function isHttpMapped(e: unknown): e is HttpMapped {
  return e instanceof Error && typeof (e as Partial<HttpMapped>).toApiError === 'function';
}

/** Any failure on the request path → PostgREST's status and body. */
export function toHttp(e: unknown, authenticated: boolean): ApiError {
  if (e instanceof ApiError) return e;
  if (isHttpMapped(e)) return e.toApiError(authenticated);
  if (isPgError(e)) {
    const mapped = fromPgError(e, authenticated);
    if (mapped.status === 503) mapped.headers['Retry-After'] = '1';
    return mapped;
  }
  return apiError(500, 'PGML500', 'Internal server error', (e as Error)?.message ?? String(e));
}
