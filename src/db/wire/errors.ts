import type { DatabaseError, NoticeMessage } from 'pg-protocol/dist/messages.js';

/**
 * An ErrorResponse, shaped like postgres.js's PostgresError as far as our code reads it
 * (src/errors.ts isPgError: name 'PostgresError', code, message, detail, hint).
 */
export class PostgresError extends Error {
  override readonly name = 'PostgresError';
  readonly code: string;
  readonly severity: string | undefined;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  readonly position: string | undefined;
  readonly where: string | undefined;
  readonly schema_name: string | undefined;
  readonly table_name: string | undefined;
  readonly column_name: string | undefined;
  readonly constraint_name: string | undefined;
  readonly routine: string | undefined;

  constructor(m: DatabaseError | NoticeMessage) {
    super(m.message ?? 'unknown PostgreSQL error');
    this.code = m.code ?? 'XX000';
    this.severity = m.severity;
    this.detail = m.detail;
    this.hint = m.hint;
    this.position = m.position;
    this.where = m.where;
    this.schema_name = m.schema;
    this.table_name = m.table;
    this.column_name = m.column;
    this.constraint_name = m.constraint;
    this.routine = m.routine;
  }

  get fatal(): boolean {
    return this.severity === 'FATAL' || this.severity === 'PANIC';
  }
}

/**
 * The socket failed or closed. `code` is the socket's errno code (ECONNREFUSED, ECONNRESET, ...)
 * or CONNECTION_CLOSED / CONNECT_TIMEOUT, all of which src/db/pool.ts isConnectionError knows.
 */
export class WireConnectionError extends Error {
  constructor(readonly code: string, message: string, override readonly cause?: unknown) {
    super(message);
  }

  static from(e: unknown): WireConnectionError {
    if (e instanceof WireConnectionError) return e;
    const code = (e as { code?: unknown })?.code;
    return new WireConnectionError(typeof code === 'string' ? code : 'CONNECTION_CLOSED', (e as Error)?.message ?? String(e), e);
  }
}

/** The server spoke something this client does not expect: the connection is destroyed. */
export class ProtocolError extends WireConnectionError {
  constructor(message: string) {
    super('CONNECTION_DESTROYED', `protocol error: ${message}`);
  }
}
