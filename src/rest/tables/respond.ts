/** The statement's single result row → PostgREST's status, headers and body. */
import { apiError } from '../../errors.ts';
import type { Preferences } from '../prefer.ts';
import { applyResponseGucs, contentRange, type HttpResponse } from '../rpc.ts';
import type { Media } from './media.ts';
import type { TablePlan } from './plan.ts';

export interface TableResult {
  total_result_set: string | number | null;
  page_total: string | number;
  body: string | null;
  location?: string | null;
  inserted?: string | number | null;
  response_headers: string | null;
  response_status: string | null;
}

/** PostgREST's Content-Location: the path and the query sorted by key, strictly percent-encoded. */
function contentLocation(path: string, query: [string, string][]): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  const sorted = [...query].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return sorted.length ? `${path}?${sorted.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')}` : path;
}

function preferenceApplied(method: string, prefer: Preferences, counted: boolean): string | null {
  const out: string[] = [];
  if (method === 'POST' && prefer.resolution) out.push(`resolution=${prefer.resolution}`);
  if ((method === 'POST' || method === 'PATCH') && prefer.missing) out.push(`missing=${prefer.missing}`);
  if (method !== 'GET' && method !== 'HEAD' && prefer.return) out.push(`return=${prefer.return}`);
  if (counted && prefer.count) out.push(`count=${prefer.count}`);
  if (prefer.tx) out.push(`tx=${prefer.tx}`);
  if (prefer.maxAffected !== undefined && prefer.handling === 'strict' && (method === 'PATCH' || method === 'DELETE')) out.push(`max-affected=${prefer.maxAffected}`);
  return out.length ? out.join(', ') : null;
}

/** Checks that make the transaction roll back (the response is an error). */
export function violation(plan: TablePlan, row: TableResult, method: string, prefer: Preferences, media: Media): Error | null {
  const pageTotal = Number(row.page_total);
  if (media.kind === 'object' && (method === 'GET' || method === 'HEAD' || plan.returning === 'representation') && pageTotal !== 1) {
    return apiError(406, 'PGRST116', 'JSON object requested, multiple (or no) rows returned', `The result contains ${pageTotal} rows`, null);
  }
  if (prefer.handling === 'strict' && prefer.maxAffected !== undefined && (method === 'PATCH' || method === 'DELETE') && pageTotal > prefer.maxAffected) {
    return apiError(400, 'PGRST124', 'Query result exceeds max-affected preference constraint', `The query affects ${pageTotal} rows`, null);
  }
  return null;
}

export function shapeTableResponse(plan: TablePlan, row: TableResult, req: { method: string; path: string; query: [string, string][]; prefer: Preferences; media: Media }): HttpResponse {
  const { method, prefer, media } = req;
  const pageTotal = Number(row.page_total);
  const total = row.total_result_set === null ? null : Number(row.total_result_set);
  const res: HttpResponse = { status: 200, headers: {}, body: null };
  const applied = preferenceApplied(method, prefer, plan.counted);
  if (method === 'GET' || method === 'HEAD') {
    if (total !== null && plan.offset > 0 && plan.offset > total) {
      const err = apiError(416, 'PGRST103', 'Requested range not satisfiable', `An offset of ${plan.offset} was requested, but there are only ${total} rows.`, null);
      err.headers['Content-Range'] = `*/${total}`;
      err.headers['Content-Location'] = contentLocation(req.path, req.query);
      if (applied) err.headers['Preference-Applied'] = applied;
      throw err;
    }
    res.headers['Content-Range'] = contentRange(plan.offset, pageTotal, total);
    res.headers['Content-Location'] = contentLocation(req.path, req.query);
    res.headers['Content-Type'] = media.contentType;
    if (total !== null && pageTotal < total) res.status = 206;
    res.body = method === 'HEAD' ? null : row.body;
  } else {
    const representation = plan.returning === 'representation';
    if (method === 'POST') {
      res.status = plan.flagsInserted && pageTotal > 0 && Number(row.inserted) === 0 ? 200 : 201;
      res.headers['Content-Range'] = `*/${total ?? '*'}`;
      if (plan.returning === 'headers-only' && row.location) {
        const keys = JSON.parse(row.location) as Record<string, unknown>;
        res.headers['Location'] = `/${plan.table.name}?${Object.entries(keys).map(([k, v]) => `${k}=eq.${v === null ? 'null' : String(v)}`).join('&')}`;
      }
    } else {
      res.status = representation ? 200 : 204;
      if (method === 'PATCH') res.headers['Content-Range'] = pageTotal > 0 ? `0-${pageTotal - 1}/${total ?? '*'}` : `*/${total ?? '*'}`;
      else if (method === 'DELETE') res.headers['Content-Range'] = `*/${total ?? '*'}`;
    }
    if (representation) {
      res.headers['Content-Type'] = media.contentType;
      res.body = row.body;
    }
  }
  if (applied) res.headers['Preference-Applied'] = applied;
  applyResponseGucs(row, res);
  return res;
}
