/**
 * A parser for the subset of YAML the deploy/ files are written in: block mappings and sequences,
 * plain / single- / double-quoted scalars, flow sequences of scalars, comments, `---` documents.
 * Anything outside it (anchors, aliases, tags, flow mappings, block scalars) is an error, as are
 * plain scalars that YAML 1.1 (PyYAML, go-yaml v2 in Kubernetes) and YAML 1.2 read differently
 * (yes/no/on/off, 0-prefixed numbers, exponents without a dot): such values must be quoted.
 * No YAML package is installed in this repository; validate.ts cross-checks this parser against
 * PyYAML when python3 has it.
 */

export class YamlSubsetError extends Error {
  constructor(file: string, line: number, problem: string) {
    super(`${file}:${line}: ${problem}`);
  }
}

interface Line {
  indent: number;
  text: string;
  no: number;
}

function stripComment(raw: string): string {
  let quote: string | null = null;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      // a quote opens a quoted scalar only at the start of a token
      if (i === 0 || /[\s:[,-]/.test(raw[i - 1])) quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(raw[i - 1]))) {
      return raw.slice(0, i);
    }
  }
  return raw;
}

const isSeqItem = (t: string) => t === '-' || t.startsWith('- ');

/** index of the `:` that ends a mapping key (followed by a space or the end), outside quotes */
function keyColon(t: string): number {
  let quote: string | null = null;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if ((c === '"' || c === "'") && i === 0) quote = c;
    else if (c === ':' && (i + 1 === t.length || t[i + 1] === ' ')) return i;
  }
  return -1;
}

class Parser {
  i = 0;
  constructor(private readonly lines: Line[], private readonly file: string) {}

  fail(problem: string, line = this.lines[Math.min(this.i, this.lines.length - 1)]): never {
    throw new YamlSubsetError(this.file, line?.no ?? 0, problem);
  }

  node(indent: number): unknown {
    const line = this.lines[this.i];
    if (!line || line.indent < indent) return null;
    if (isSeqItem(line.text)) return this.seq(line.indent);
    if (keyColon(line.text) >= 0) return this.map(line.indent);
    this.i++;
    return this.scalar(line.text, line);
  }

  seq(indent: number): unknown[] {
    const out: unknown[] = [];
    for (let line = this.lines[this.i]; line && line.indent === indent && isSeqItem(line.text); line = this.lines[this.i]) {
      const rest = line.text.slice(1).trimStart();
      if (rest === '') {
        this.i++;
        const next = this.lines[this.i];
        out.push(next && next.indent > indent ? this.node(next.indent) : null);
      } else {
        // "- key: v" / "- - x" / "- scalar": the rest is a node indented past the dash
        this.lines[this.i] = { indent: indent + (line.text.length - rest.length), text: rest, no: line.no };
        out.push(this.node(this.lines[this.i].indent));
      }
    }
    const after = this.lines[this.i];
    if (after && after.indent > indent) this.fail('unexpected indentation', after);
    return out;
  }

  map(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let line = this.lines[this.i]; line && line.indent === indent && !isSeqItem(line.text); line = this.lines[this.i]) {
      const colon = keyColon(line.text);
      if (colon < 0) this.fail(`expected "key: value", got ${JSON.stringify(line.text)}`, line);
      const rawKey = line.text.slice(0, colon).trim();
      const key = /^["']/.test(rawKey) ? String(this.scalar(rawKey, line)) : rawKey;
      if (key === '' || key === '<<' || /^[&*!?|>[\]{}]/.test(key)) this.fail(`unsupported key ${JSON.stringify(rawKey)}`, line);
      if (Object.hasOwn(out, key)) this.fail(`duplicate key ${JSON.stringify(key)}`, line);
      const rest = line.text.slice(colon + 1).trim();
      this.i++;
      if (rest === '') {
        const next = this.lines[this.i];
        out[key] = next && (next.indent > indent || (next.indent === indent && isSeqItem(next.text))) ? this.node(next.indent) : null;
      } else {
        out[key] = this.scalar(rest, line);
        const next = this.lines[this.i];
        if (next && next.indent > indent) this.fail('unexpected indentation (a value cannot continue on the next line)', next);
      }
    }
    const after = this.lines[this.i];
    if (after && after.indent > indent) this.fail('unexpected indentation', after);
    return out;
  }

  scalar(text: string, line: Line): unknown {
    const t = text.trim();
    if (t.startsWith('"')) {
      if (!t.endsWith('"') || t.length < 2) this.fail('unterminated double-quoted scalar', line);
      try {
        return JSON.parse(t) as string;
      } catch {
        return this.fail('double-quoted scalar with escapes outside the supported (JSON) set', line);
      }
    }
    if (t.startsWith("'")) {
      if (!t.endsWith("'") || t.length < 2) this.fail('unterminated single-quoted scalar', line);
      const inner = t.slice(1, -1);
      if (/(^|[^'])'([^']|$)/.test(inner.replace(/''/g, ''))) this.fail('stray quote in single-quoted scalar', line);
      return inner.replace(/''/g, "'");
    }
    if (t.startsWith('[')) {
      if (!t.endsWith(']')) this.fail('flow sequence must fit on one line', line);
      const body = t.slice(1, -1).trim();
      if (body === '') return [];
      const items: string[] = [];
      let cur = '';
      let quote: string | null = null;
      for (let i = 0; i < body.length; i++) {
        const c = body[i];
        if (quote) {
          if (c === '\\' && quote === '"') {
            cur += c + body[++i];
            continue;
          }
          if (c === quote) quote = null;
        } else if (c === '"' || c === "'") quote = c;
        else if (c === ',') {
          items.push(cur);
          cur = '';
          continue;
        } else if ('[]{}'.includes(c)) this.fail('nested flow collections are not supported', line);
        cur += c;
      }
      items.push(cur);
      return items.map((s) => this.scalar(s, line));
    }
    if (t === '{}') return {};
    if (/^[{&*!|>%@`]/.test(t)) this.fail(`unsupported YAML construct ${JSON.stringify(t)}`, line);
    if (/: |:$/.test(t)) this.fail(`plain scalar containing ": " (quote it): ${JSON.stringify(t)}`, line);
    if (/^(null|Null|NULL|~)$/.test(t)) return null;
    if (/^(true|True|TRUE)$/.test(t)) return true;
    if (/^(false|False|FALSE)$/.test(t)) return false;
    if (/^(y|n|yes|no|on|off)$/i.test(t)) this.fail(`${t} is a boolean in YAML 1.1 and a string in 1.2: quote it`, line);
    if (/^[-+]?0\d+$/.test(t)) this.fail(`${t} is octal in YAML 1.1: quote it`, line);
    if (/^[-+]?\d+$/.test(t)) return Number(t);
    if (/^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
    if (/^[-+]?\d+[eE][-+]?\d+$/.test(t) || /^[-+]?\.(inf|nan)$/i.test(t) || /^\d+(:[0-5]?\d)+$/.test(t)) {
      this.fail(`${t} is read differently by YAML 1.1 and 1.2: quote it`, line);
    }
    return t;
  }
}

/** Parses every `---`-separated document of `src`. */
export function parseYamlDocuments(src: string, file = '<yaml>'): unknown[] {
  const docs: Line[][] = [[]];
  src.split(/\r?\n/).forEach((raw, idx) => {
    if (/^---\s*(#.*)?$/.test(raw)) {
      docs.push([]);
      return;
    }
    const text = stripComment(raw);
    if (text.trim() === '') return;
    const lead = raw.match(/^[ \t]*/)![0];
    if (lead.includes('\t')) throw new YamlSubsetError(file, idx + 1, 'tab in indentation');
    docs[docs.length - 1].push({ indent: lead.length, text: text.trim(), no: idx + 1 });
  });
  return docs
    .filter((d) => d.length > 0)
    .map((lines) => {
      const p = new Parser(lines, file);
      const value = p.node(lines[0].indent);
      if (lines[0].indent !== 0) p.fail('a document must start at column 1', lines[0]);
      if (p.i < lines.length) p.fail('unexpected content', lines[p.i]);
      return value;
    });
}
