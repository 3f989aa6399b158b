/** Accept negotiation and the SQL that renders the page in the chosen media type. */
import { apiError } from '../../errors.ts';
import type { Params } from '../sql.ts';

export type Media = { kind: 'json' | 'object' | 'csv'; stripNulls: boolean; contentType: string };

const JSON_MEDIA: Media = { kind: 'json', stripNulls: false, contentType: 'application/json; charset=utf-8' };

export function negotiate(accept: string | undefined): Media {
  if (!accept) return JSON_MEDIA;
  const offered = accept.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of offered) {
    const [type, ...paramList] = item.split(';').map((s) => s.trim().toLowerCase());
    const stripped = paramList.includes('nulls=stripped');
    switch (type) {
      case 'application/json':
      case 'application/*':
      case '*/*':
        return JSON_MEDIA;
      case 'application/vnd.pgrst.array+json':
      case 'application/vnd.pgrst.array':
        return stripped ? { kind: 'json', stripNulls: true, contentType: 'application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8' } : JSON_MEDIA;
      case 'application/vnd.pgrst.object+json':
      case 'application/vnd.pgrst.object':
        return { kind: 'object', stripNulls: stripped, contentType: `application/vnd.pgrst.object+json${stripped ? ';nulls=stripped' : ''}; charset=utf-8` };
      case 'text/csv':
        return { kind: 'csv', stripNulls: false, contentType: 'text/csv; charset=utf-8' };
    }
  }
  throw apiError(415, 'PGRST107', `None of these media types are available: ${offered.join(', ')}`, null, null);
}

/** The body column over the page rows `_postgrest_t`. */
export function bodySql(media: Media, names: string[], params: Params): string {
  switch (media.kind) {
    case 'object':
      return media.stripNulls ? `coalesce(json_strip_nulls(json_agg(_postgrest_t)->0)::text, '')` : `coalesce((json_agg(_postgrest_t)->0)::text, '')`;
    case 'csv':
      // the header comes from the planned column names; each row is its record text without the parentheses
      return `${params.add(names.join(','))}::text || chr(10) || coalesce(string_agg(substring(_postgrest_t::text, 2, length(_postgrest_t::text) - 2), chr(10)), '')`;
    default:
      return media.stripNulls ? `coalesce(json_strip_nulls(json_agg(_postgrest_t)), '[]')::text` : `coalesce(json_agg(_postgrest_t), '[]')::text`;
  }
}
