import type { FastifyInstance } from 'fastify';
import { PostgrestClient } from '@supabase/postgrest-js';
import type { Config } from '../../src/config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startGateway, token } from '../helpers/gateway.ts';
import { FIXTURE_SQL } from './fixture.ts';

export interface TablesEnv {
  db: TestDatabase;
  app: FastifyInstance;
  url: string;
  /** anonymous postgrest-js client */
  anon: PostgrestClient;
  /** postgrest-js client with a token for role "authenticated", sub "u1" */
  user: PostgrestClient;
  close(): Promise<void>;
}

/** A fresh database with the fixture and a gateway on a real socket (tables settings on). */
export async function startTablesEnv(overrides: Record<string, unknown> = {}): Promise<TablesEnv> {
  const db = await createTestDatabase({ migrate: false });
  await db.admin.unsafe(FIXTURE_SQL).simple();
  const app = await startGateway(db, {}, { dbAggregatesEnabled: true, ...overrides } as Partial<Config>);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  const jwt = await token({ role: 'authenticated', sub: 'u1' });
  return {
    db,
    app,
    url,
    anon: new PostgrestClient(url),
    user: new PostgrestClient(url, { headers: { Authorization: `Bearer ${jwt}` } }),
    async close() {
      await app.close();
      await db.drop();
    },
  };
}

/** A response body as JSON (tests read fields from it freely). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const json = async (r: Response): Promise<any> => r.json();
