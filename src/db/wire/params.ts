/**
 * Parameters travel in text format with type OID 0 (the server infers the type from the
 * statement; our statements cast their parameters).
 */
export function toText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'bigint':
      return String(v);
    case 'boolean':
      return v ? 't' : 'f';
  }
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return '\\x' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  if (Array.isArray(v)) return arrayLiteral(v);
  return JSON.stringify(v);
}

function arrayLiteral(values: unknown[]): string {
  let s = '{';
  for (let i = 0; i < values.length; i++) {
    if (i) s += ',';
    const t = Array.isArray(values[i]) ? arrayLiteral(values[i] as unknown[]) : toText(values[i]);
    s += t === null ? 'NULL' : Array.isArray(values[i]) ? t : '"' + t.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
  }
  return s + '}';
}
