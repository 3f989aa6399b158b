/** Child services (gateway, PostgREST, raw pg server): spawn, wait until ready, stop, CPU time. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `node --import tsx <file>`: a TypeScript entry point without npx's extra process. */
export function nodeTs(file: string, nodeArgs: string[] = []): { command: string; args: string[] } {
  return { command: process.execPath, args: [...nodeArgs, '--import', 'tsx', resolve(REPO_ROOT, file)] };
}

/** The environment without this machine's PGRST_*, PGML_*, DATABASE_URL or LOG_LEVEL, so only the given settings apply. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PGRST_|PGML_|PG[A-Z]+$)/.test(k) || k === 'DATABASE_URL' || k === 'LOG_LEVEL' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export interface Service {
  name: string;
  pid: number;
  /** the last lines of stdout/stderr, for error messages */
  output(): string;
  /** resolves when the process has exited */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** polled until true; the service failed when it exits first or `readyTimeoutMs` passes */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** ms between SIGTERM and SIGKILL on stop */
  killTimeoutMs?: number;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // its own process group (detached): reaches grandchildren too
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* gone */
    }
  }
}

export async function spawnService(opts: SpawnOptions): Promise<Service> {
  const child = spawn(opts.command, opts.args, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line);
    if (lines.length > 60) lines.splice(0, lines.length - 60);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      res(exitInfo);
    });
    child.once('error', (e) => {
      lines.push(String(e));
      exitInfo = { code: null, signal: null };
      res(exitInfo);
    });
  });
  const stop = async () => {
    unregister();
    if (exitInfo) return;
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), opts.killTimeoutMs ?? 5000);
    await exited;
    clearTimeout(timer);
    killGroup(child, 'SIGKILL'); // leftovers of the group, if any
  };
  const unregister = onCleanup(opts.name, stop, () => killGroup(child, 'SIGKILL'));
  const service: Service = { name: opts.name, pid: child.pid ?? -1, output: () => lines.join('\n'), exited, stop };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exitInfo) {
      throw new Error(`${opts.name} exited before it was ready (code ${(exitInfo as { code: number | null }).code}):\n${service.output()}`);
    }
    if (await opts.ready().catch(() => false)) return service;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${opts.name} was not ready within ${opts.readyTimeoutMs ?? 60_000} ms:\n${service.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** user+system CPU seconds of one process (0 when it is gone or /proc is unavailable). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is state (field 3); utime is field 14, stime field 15
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** pid and all its descendants, from /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [root];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * CPU seconds used by a changing set of processes between start and stop: a pid seen at both ends
 * counts its difference, a pid that appeared in between all of its time; a pid that exited in
 * between is left out (its last interval is lost rather than counted negative).
 */
export function cpuMeter(pids: () => number[] | Promise<number[]>): { stop(): Promise<number> } {
  const start = Promise.resolve(pids()).then((list) => new Map(list.map((p) => [p, cpuSeconds(p)])));
  return {
    async stop() {
      const before = await start;
      let total = 0;
      for (const p of await pids()) {
        const now = cpuSeconds(p);
        if (now > 0) total += Math.max(0, now - (before.get(p) ?? 0));
      }
      return total;
    },
  };
}
