import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { startGateway } from './helpers/gateway.ts';

let db: TestDatabase;
let app: FastifyInstance;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.unsafe(`
    create table people (id int primary key, name text not null, score real);
    create function predict_score(name text, boost float8 default 1) returns table(name text, score real) language sql stable as $$ select name, 1::real $$;
    comment on function predict_score(text, float8) is 'Predicts a score';
    create function ping() returns void language sql as $$ select $$;
    create function tags(xs text[]) returns int language sql as $$ select 1 $$;
  `).simple();
  app = await startGateway(db);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('GET / (OpenAPI 3.1)', () => {
  it('describes every exposed function with typed request and response schemas', async () => {
    const res = await app.inject('/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/openapi\+json/);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    const op = doc.paths['/rpc/predict_score'].post;
    expect(op.summary).toBe('Predicts a score');
    expect(op.requestBody.content['application/json'].schema).toEqual({
      type: 'object',
      properties: { name: { type: 'string' }, boost: { type: 'number', format: 'double' } },
      required: ['name'],
      additionalProperties: false,
    });
    expect(op.responses['200'].content['application/json'].schema).toEqual({
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, score: { type: 'number', format: 'float' } } },
    });
    expect(doc.paths['/rpc/predict_score'].get.parameters.map((p: { name: string }) => p.name)).toEqual(['name', 'boost']);
    expect(doc.paths['/rpc/ping'].post.responses['204']).toBeDefined();
    expect(doc.paths['/rpc/ping'].get).toBeUndefined();
    expect(doc.paths['/rpc/tags'].post.requestBody.content['application/json'].schema.properties.xs).toEqual({ type: 'array', items: { type: 'string' } });
  });

  it('describes tables and the bearer security scheme', async () => {
    const doc = (await app.inject('/')).json();
    expect(doc.components.securitySchemes.bearerAuth).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(doc.components.schemas.people.required).toEqual(['id', 'name']);
    expect(doc.paths['/people'].get).toBeDefined();
    expect(doc.components.schemas.Error.required).toEqual(['code', 'message', 'details', 'hint']);
  });

  it('every $ref resolves', async () => {
    const doc = (await app.inject('/')).json();
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    for (const r of refs) {
      const path = r.slice(8, -1).replace(/^#\//, '').split('/');
      let cur: unknown = doc;
      for (const p of path) cur = (cur as Record<string, unknown>)[p];
      expect(cur, r).toBeDefined();
    }
  });
});
