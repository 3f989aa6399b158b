import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OpenAPIV3_1 } from 'openapi-types';
import type { Config } from '../config.ts';
import type { Snapshot } from '../schema/cache.ts';
import type { ColumnDef, FunctionDef, ReturnShape } from '../schema/reflect.ts';

// openapi-types' 3.1 schema type does not nest into its own parameter/media types; build loosely
type Schema = OpenAPIV3_1.SchemaObject & Record<string, unknown>;
const s = (x: Schema) => x as never;

const OPENAPI_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'openapi');

/** JSON Schema for a PostgreSQL type name as format_type() prints it. */
export function schemaForType(type: string): Schema {
  if (type.endsWith('[]')) return { type: 'array', items: schemaForType(type.slice(0, -2)) };
  switch (type) {
    case 'smallint':
    case 'integer':
      return { type: 'integer', format: 'int32' };
    case 'bigint':
      return { type: 'integer', format: 'int64' };
    case 'real':
      return { type: 'number', format: 'float' };
    case 'double precision':
      return { type: 'number', format: 'double' };
    case 'numeric':
      return { type: 'number' };
    case 'boolean':
      return { type: 'boolean' };
    case 'json':
    case 'jsonb':
      return {};
    case 'uuid':
      return { type: 'string', format: 'uuid' };
    case 'date':
      return { type: 'string', format: 'date' };
    case 'timestamp with time zone':
    case 'timestamp without time zone':
      return { type: 'string', format: 'date-time' };
    case 'bytea':
      return { type: 'string', contentEncoding: 'base64' } as Schema;
    default:
      return { type: 'string', description: type === 'text' || type === 'character varying' ? undefined : type };
  }
}

function objectSchema(columns: ColumnDef[], requiredAll = false): Schema {
  return {
    type: 'object',
    properties: Object.fromEntries(columns.map((c) => [c.name, { ...schemaForType(c.type), ...(c.description ? { description: c.description } : {}) }])),
    ...(requiredAll ? { required: columns.filter((c) => !c.nullable && !c.hasDefault).map((c) => c.name) } : {}),
  };
}

function responseSchema(ret: ReturnShape): Schema | null {
  if (ret.kind === 'void') return null;
  const one = ret.kind === 'scalar' ? schemaForType(ret.type) : objectSchema(ret.columns);
  return ret.set ? { type: 'array', items: one } : one;
}

function argsSchema(fn: FunctionDef): Schema {
  if (fn.singleUnnamed) return schemaForType(fn.singleUnnamed.type);
  return {
    type: 'object',
    properties: Object.fromEntries(fn.args.map((a) => [a.name, schemaForType(a.variadic && !a.type.endsWith('[]') ? `${a.type}[]` : a.type)])),
    required: fn.args.filter((a) => !a.hasDefault && !a.variadic).map((a) => a.name),
    additionalProperties: false,
  };
}

function rpcPath(fns: FunctionDef[]): OpenAPIV3_1.PathItemObject {
  const fn = fns[0];
  const bodies = fns.map(argsSchema);
  const responses = fns.map((f) => responseSchema(f.returns));
  const anyVoid = responses.some((r) => r === null);
  const returnSchema: Schema | null = responses.every((r) => r === null) ? null : responses.length === 1 ? responses[0] : { oneOf: responses.filter((r): r is Schema => r !== null) };
  const ok: OpenAPIV3_1.ResponsesObject = {};
  if (returnSchema) ok['200'] = { description: 'OK', content: { 'application/json': { schema: s(returnSchema) } } };
  if (anyVoid) ok['204'] = { description: 'No Content' };
  const errorRef = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  const summary = fn.description?.split('\n')[0] ?? undefined;
  const readable = fns.every((f) => f.volatility !== 'v');
  const item: OpenAPIV3_1.PathItemObject = {
    post: {
      tags: ['(rpc) functions'],
      summary,
      description: fn.description ?? undefined,
      operationId: `rpc_${fn.name}`,
      requestBody: { required: fns.every((f) => f.args.some((a) => !a.hasDefault && !a.variadic)) || !!fn.singleUnnamed, content: { 'application/json': { schema: s(bodies.length === 1 ? bodies[0] : { oneOf: bodies }) } } },
      responses: { ...ok, '400': errorRef, '401': errorRef, '403': errorRef, '404': errorRef },
    },
  };
  if (readable && !fn.singleUnnamed) {
    const args = new Map(fns.flatMap((f) => f.args.map((a) => [a.name, a] as const)));
    item.get = {
      tags: ['(rpc) functions'],
      summary,
      operationId: `rpc_${fn.name}_get`,
      parameters: [...args.values()].map((a) => ({ name: a.name, in: 'query', required: fns.length === 1 && !a.hasDefault && !a.variadic, schema: s(schemaForType(a.type)) })),
      responses: { ...ok, '400': errorRef, '401': errorRef, '404': errorRef },
    };
  }
  return item;
}

function loadStaticSpecs(): OpenAPIV3_1.Document[] {
  let files: string[];
  try {
    files = readdirSync(OPENAPI_DIR).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return files.map((f) => JSON.parse(readFileSync(join(OPENAPI_DIR, f), 'utf8')) as OpenAPIV3_1.Document);
}

let staticSpecs: OpenAPIV3_1.Document[] | null = null;

/** The OpenAPI 3.1 description of the exposed schema plus the hand-written /models API. */
export function buildOpenApi(snapshot: Snapshot, schema: string, config: Config): OpenAPIV3_1.Document {
  staticSpecs ??= loadStaticSpecs();
  const paths: OpenAPIV3_1.PathsObject = {};
  const schemas: Record<string, Schema> = {
    Error: {
      type: 'object',
      required: ['code', 'message', 'details', 'hint'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: ['string', 'null'] }, hint: { type: ['string', 'null'] } },
    },
  };
  for (const t of snapshot.reflection.tables.filter((x) => x.schema === schema).sort((a, b) => a.name.localeCompare(b.name))) {
    schemas[t.name] = { ...objectSchema(t.columns, true), description: t.description ?? undefined };
    paths[`/${t.name}`] = {
      get: {
        tags: [t.name],
        operationId: `get_${t.name}`,
        responses: { '200': { description: 'OK', content: { 'application/json': { schema: { type: 'array', items: { $ref: `#/components/schemas/${t.name}` } } } } } },
      },
    };
  }
  const byName = new Map<string, FunctionDef[]>();
  for (const f of snapshot.functionsIn(schema)) byName.set(f.name, [...(byName.get(f.name) ?? []), f]);
  for (const name of [...byName.keys()].sort()) paths[`/rpc/${name}`] = rpcPath(byName.get(name)!);
  const doc: OpenAPIV3_1.Document = {
    openapi: '3.1.0',
    info: { title: 'pgml-gateway', version: '0.1.0', description: `PostgREST-compatible API of schema "${schema}" with PostgresML-compatible machine learning` },
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas,
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    },
    security: config.dbAnonRole ? [{}, { bearerAuth: [] }] : [{ bearerAuth: [] }],
  };
  for (const spec of staticSpecs) {
    Object.assign(doc.paths!, spec.paths ?? {});
    Object.assign(doc.components!.schemas!, spec.components?.schemas ?? {});
    doc.components!.parameters = { ...doc.components!.parameters, ...spec.components?.parameters };
    doc.components!.responses = { ...doc.components!.responses, ...spec.components?.responses };
  }
  return doc;
}
