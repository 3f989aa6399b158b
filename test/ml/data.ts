/**
 * Test helper: loads a data set into typed RawColumns (empty cell = NULL): the file of
 * ../shared/data when present, else the repository's copy or a generated stand-in (test/fixtures).
 */
import type { RawColumn } from '../../src/ml/preprocess.ts';
import { dataCsv } from '../fixtures/index.ts';

export { SHARED_DATA as DATA_DIR, dataSource } from '../fixtures/index.ts';

export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Columns in file order; a column whose non-empty cells all parse as numbers is numeric. */
export function loadCsv(path: string): RawColumn[] {
  const [header, ...rows] = parseCsv(dataCsv(path));
  return header.map((name, j) => {
    const cells = rows.map((r) => r[j] ?? '');
    const numeric = cells.every((c) => c === '' || !Number.isNaN(Number(c)));
    if (numeric) {
      return { name, kind: 'numeric' as const, values: Float64Array.from(cells, (c) => (c === '' ? NaN : Number(c))) };
    }
    return { name, kind: 'text' as const, values: cells.map((c) => (c === '' ? null : c)) };
  });
}

export function column(cols: RawColumn[], name: string): RawColumn {
  const c = cols.find((x) => x.name === name);
  if (!c) throw new Error(`no column ${name}`);
  return c;
}

export function without(cols: RawColumn[], name: string): RawColumn[] {
  return cols.filter((c) => c.name !== name);
}
