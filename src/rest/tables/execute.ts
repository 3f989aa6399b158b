/** /{table}: plan, run as the caller in one transaction, shape the response. */
import type { Identity } from '../../auth/jwt.ts';
import { runAsCallerSelected } from '../../db/wire/select.ts';
import type { Gateway } from '../../gateway.ts';
import { requestScope, type RestInput } from '../execute.ts';
import { parseRangeHeader } from '../grammar.ts';
import type { HttpResponse } from '../rpc.ts';
import { tableExtras } from './catalog.ts';
import { negotiate } from './media.ts';
import { planTable } from './plan.ts';
import { shapeTableResponse, violation, type TableResult } from './respond.ts';

export async function executeTable(gw: Gateway, identity: Identity, name: string, input: RestInput): Promise<HttpResponse> {
  const { snapshot, schema, prefer, ctx, run } = requestScope(gw, identity, input);
  const accept = Array.isArray(input.headers.accept) ? input.headers.accept.join(',') : input.headers.accept;
  const media = negotiate(accept);
  const isRead = input.method === 'GET' || input.method === 'HEAD';
  const extras = await tableExtras(gw.pool.sql, snapshot);
  const plan = planTable(snapshot, extras, {
    method: input.method,
    schema,
    name,
    query: input.query,
    bodyKind: input.bodyKind,
    body: input.body,
    rawBody: input.rawBody,
    prefer,
    media,
    range: isRead ? parseRangeHeader(input.headers.range) : undefined,
    maxRows: isRead ? gw.config.dbMaxRows : undefined,
    aggregatesEnabled: gw.config.dbAggregatesEnabled,
    safeUpdate: gw.config.dbSafeUpdate,
  });
  let failed: Error | null = null;
  const rows = await runAsCallerSelected(gw, ctx, plan.statement, {
    ...run,
    readOnly: plan.readOnly,
    decide: isRead
      ? undefined
      : (r) => {
          failed = violation(plan, r[0] as unknown as TableResult, input.method, prefer, media);
          return failed ? 'rollback' : 'commit';
        },
  });
  const row = rows[0] as unknown as TableResult;
  if (isRead) failed = violation(plan, row, input.method, prefer, media);
  if (failed) throw failed;
  return shapeTableResponse(plan, row, { method: input.method, path: input.path, query: input.query, prefer, media });
}
