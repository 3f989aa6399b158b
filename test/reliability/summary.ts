/**
 * Prints the summary table of a reliability run from the JSON lines the tests appended
 * (test/reliability/report.ts): `npx tsx test/reliability/summary.ts [file]`.
 * `--reset` empties the file instead (the start of `npm run test:reliability`).
 * Exit code 1 when a line failed or the file holds no line.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatTable, type Cell } from '../../bench/lib/table.ts';
import { reportFile, type ReportLine } from './report.ts';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--')) ?? reportFile();

if (args.includes('--reset')) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, '');
  process.exit(0);
}

const lines: ReportLine[] = existsSync(file)
  ? readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).flatMap((l) => {
      try {
        return [JSON.parse(l) as ReportLine];
      } catch {
        return [];
      }
    })
  : [];

if (lines.length === 0) {
  console.log(`No reliability results in ${file}.`);
  process.exit(1);
}

const category = (name: string) => (name.includes('/') ? name.slice(0, name.indexOf('/')) : 'other');
const ORDER = ['load', 'fault', 'limit', 'security', 'fuzz'];
const TITLES: Record<string, string> = { load: 'load held', fault: 'faults survived', limit: 'limits enforced', security: 'attacks tried and refused', fuzz: 'fuzz cases' };
const rank = (c: string) => (ORDER.includes(c) ? ORDER.indexOf(c) : ORDER.length);
lines.sort((a, b) => rank(category(a.name)) - rank(category(b.name)) || category(a.name).localeCompare(category(b.name)));

const figureText = (f: ReportLine['figures']) =>
  Object.entries(f)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(Math.abs(v) >= 100 ? 0 : 2) : v}`)
    .join(' ');

const wrap = (s: string, width: number): string[] => {
  const out: string[] = [];
  let cur = '';
  for (const word of s.split(' ')) {
    if (cur && cur.length + 1 + word.length > width) {
      out.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) out.push(cur);
  return out.length ? out : [''];
};

const rows: Cell[][] = [];
for (const l of lines) {
  const parts = wrap(figureText(l.figures), 90);
  rows.push([category(l.name), l.name.slice(category(l.name).length + 1) || l.name, l.result, parts[0]]);
  for (const p of parts.slice(1)) rows.push(['', '', '', p]);
}
console.log('\nReliability battery: every result\n');
console.log(formatTable(['category', 'test', 'result', 'figures'], rows));

const sum = (key: string, ls = lines) => ls.reduce((a, l) => a + (typeof l.figures[key] === 'number' ? (l.figures[key] as number) : 0), 0);
const cats = [...new Set(lines.map((l) => category(l.name)))];
const totals: Cell[][] = cats.map((c) => {
  const ls = lines.filter((l) => category(l.name) === c);
  return [
    TITLES[c] ?? c,
    ls.length,
    ls.filter((l) => l.result === 'PASS').length,
    ls.filter((l) => l.result === 'KNOWN-ISSUE').length,
    ls.filter((l) => l.result === 'FAIL').length,
    sum('requests', ls),
    sum('errors', ls),
    sum('attacks', ls),
    sum('refused', ls),
    sum('fuzz_cases', ls),
    sum('lost', ls),
    sum('doubled', ls),
  ];
});
console.log('\nSummary\n');
console.log(formatTable(['', 'tests', 'pass', 'known issue', 'fail', 'requests', 'errors', 'attacks', 'refused', 'fuzz cases', 'lost', 'doubled'], totals));

const issues = lines.flatMap((l) => (l.issues ?? []).map((i) => `${l.name}: ${i}`));
if (issues.length) {
  console.log('\nKnown issues (reported, not failed):');
  for (const i of [...new Set(issues)]) console.log(`  - ${i}`);
}
const failed = lines.filter((l) => !l.ok);
const lost = sum('lost') + sum('doubled');
console.log(
  `\n${lines.length} results: ${lines.length - failed.length} held, ${failed.length} failed; ` +
    `${sum('requests')} requests, ${sum('attacks')} attacks (${sum('refused')} refused), ${sum('fuzz_cases')} fuzz cases; ` +
    `${lost === 0 ? 'nothing lost or doubled' : `${sum('lost')} writes lost, ${sum('doubled')} doubled`}.`,
);
process.exit(failed.length ? 1 : 0);
