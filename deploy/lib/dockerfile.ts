/** Just enough of the Dockerfile and .dockerignore formats to check and rehearse deploy/Dockerfile. */

export interface Instruction {
  cmd: string;
  /** the arguments after the instruction name and its --flags */
  args: string;
  flags: Record<string, string>;
  /** exec (JSON array) form, when used */
  json?: string[];
  line: number;
}

export interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  globalArgs: Record<string, string>;
  stages: Stage[];
}

function splitFlags(rest: string): { flags: Record<string, string>; args: string } {
  const flags: Record<string, string> = {};
  let args = rest;
  for (let m = args.match(/^--([a-z-]+)(?:=(\S*))?\s+/); m; m = args.match(/^--([a-z-]+)(?:=(\S*))?\s+/)) {
    flags[m[1]] = m[2] ?? 'true';
    args = args.slice(m[0].length);
  }
  return { flags, args };
}

export function parseDockerfile(text: string): Dockerfile {
  const logical: { text: string; line: number }[] = [];
  let cur: { text: string; line: number } | null = null;
  text.split(/\r?\n/).forEach((raw, idx) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && !cur)) return; // comments (also inside continuations)
    const cont = /\\\s*$/.test(raw);
    const body = cont ? raw.replace(/\\\s*$/, '') : raw;
    if (cur) cur.text += ' ' + body.trim();
    else cur = { text: body.trim(), line: idx + 1 };
    if (!cont) {
      logical.push(cur);
      cur = null;
    }
  });
  if (cur) logical.push(cur);

  const df: Dockerfile = { globalArgs: {}, stages: [] };
  for (const { text: t, line } of logical) {
    const m = t.match(/^(\w+)\s*(.*)$/s);
    if (!m) throw new Error(`Dockerfile:${line}: cannot parse ${JSON.stringify(t)}`);
    const cmd = m[1].toUpperCase();
    const { flags, args } = splitFlags(m[2]);
    const ins: Instruction = { cmd, args, flags, line };
    if (args.startsWith('[')) {
      try {
        ins.json = JSON.parse(args) as string[];
      } catch {
        /* shell form that starts with [ */
      }
    }
    if (cmd === 'HEALTHCHECK') {
      const cm = args.match(/^CMD\s+(.*)$/s);
      if (cm && cm[1].startsWith('[')) ins.json = JSON.parse(cm[1]) as string[];
    }
    if (cmd === 'FROM') {
      const fm = args.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i);
      if (!fm) throw new Error(`Dockerfile:${line}: bad FROM`);
      const base = fm[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => df.globalArgs[a ?? b] ?? '');
      df.stages.push({ name: fm[2] ?? String(df.stages.length), base, instructions: [] });
      continue;
    }
    if (df.stages.length === 0) {
      if (cmd !== 'ARG') throw new Error(`Dockerfile:${line}: ${cmd} before FROM`);
      const am = args.match(/^(\w+)(?:=(.*))?$/);
      if (am) df.globalArgs[am[1]] = am[2] ?? '';
      continue;
    }
    df.stages[df.stages.length - 1].instructions.push(ins);
  }
  return df;
}

/** ENV k=v k2=v2 (quotes allowed) or ENV k v */
export function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!args.includes('=')) {
    const [k, ...v] = args.split(/\s+/);
    out[k] = v.join(' ');
    return out;
  }
  for (const m of args.matchAll(/(\w+)=("([^"]*)"|'([^']*)'|(\S*))/g)) out[m[1]] = m[3] ?? m[4] ?? m[5] ?? '';
  return out;
}

/** COPY/ADD sources and destination (shell form; exec form also accepted) */
export function copyArgs(ins: Instruction): { sources: string[]; dest: string } {
  const parts = ins.json ?? ins.args.split(/\s+/).filter(Boolean);
  return { sources: parts.slice(0, -1), dest: parts[parts.length - 1] };
}

interface IgnorePattern {
  re: RegExp;
  exclusion: boolean;
  source: string;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * .dockerignore semantics as in moby's patternmatcher: patterns in order, the last one matching a
 * path or one of its parent directories decides; `!` re-includes.
 */
export class DockerIgnore {
  readonly patterns: IgnorePattern[];
  constructor(text: string) {
    this.patterns = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => {
        const exclusion = l.startsWith('!');
        const p = (exclusion ? l.slice(1) : l).trim().replace(/^\/+/, '').replace(/\/+$/, '');
        return { re: globToRegExp(p), exclusion, source: l };
      });
  }

  /** true when `path` (relative to the context, posix) is sent to the builder */
  includes(path: string): boolean {
    const parts = path.split('/');
    let excluded = false;
    for (const p of this.patterns) {
      let match = false;
      for (let n = 1; n <= parts.length && !match; n++) match = p.re.test(parts.slice(0, n).join('/'));
      if (match) excluded = !p.exclusion;
    }
    return !excluded;
  }
}
