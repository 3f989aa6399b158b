import { ident } from './sql.ts';

/** PGRST_DB_PRE_REQUEST is "name" (in the request's schema) or "schema.name"; returns it quoted. */
export function qualifiedPreRequest(setting: string | undefined, schema: string): string | undefined {
  if (!setting) return undefined;
  const dot = setting.indexOf('.');
  return dot < 0 ? `${ident(schema)}.${ident(setting)}` : `${ident(setting.slice(0, dot))}.${ident(setting.slice(dot + 1))}`;
}
