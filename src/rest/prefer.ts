import { apiError } from '../errors.ts';

export interface Preferences {
  return?: 'minimal' | 'headers-only' | 'representation';
  count?: 'exact' | 'planned' | 'estimated';
  tx?: 'commit' | 'rollback';
  handling?: 'strict' | 'lenient';
  resolution?: 'merge-duplicates' | 'ignore-duplicates';
  missing?: 'default' | 'null';
  maxAffected?: number;
  respondAsync?: boolean;
  timezone?: string;
  /** preferences understood, echoed in Preference-Applied */
  applied: string[];
}

const ALLOWED: Record<string, string[]> = {
  return: ['minimal', 'headers-only', 'representation'],
  count: ['exact', 'planned', 'estimated'],
  tx: ['commit', 'rollback'],
  handling: ['strict', 'lenient'],
  resolution: ['merge-duplicates', 'ignore-duplicates'],
  missing: ['default', 'null'],
};

/** Parses one or more Prefer headers as PostgREST does; with handling=strict, unknown ones are a 400. */
export function parsePrefer(header: string | string[] | undefined): Preferences {
  const prefs: Preferences = { applied: [] };
  if (!header) return prefs;
  const items = (Array.isArray(header) ? header.join(',') : header).split(',').map((s) => s.trim()).filter(Boolean);
  const invalid: string[] = [];
  for (const item of items) {
    const [rawKey, rawValue = ''] = item.split('=', 2).map((s) => s.trim());
    const key = rawKey.toLowerCase();
    const value = rawValue.toLowerCase();
    if (key === 'respond-async' && rawValue === '') {
      prefs.respondAsync = true;
      prefs.applied.push('respond-async');
    } else if (key === 'max-affected' && /^\d+$/.test(value)) {
      prefs.maxAffected = Number(value);
      prefs.applied.push(item);
    } else if (key === 'timezone' && rawValue) {
      prefs.timezone = rawValue;
    } else if (ALLOWED[key]?.includes(value)) {
      (prefs as unknown as Record<string, string>)[key] = value;
      prefs.applied.push(`${key}=${value}`);
    } else invalid.push(item);
  }
  if (prefs.handling === 'strict' && invalid.length) {
    throw apiError(400, 'PGRST122', 'Invalid preferences given with handling=strict', `Invalid preferences: ${invalid.join(', ')}`);
  }
  return prefs;
}
