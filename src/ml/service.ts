/**
 * PostgresML's API done by the gateway: train, deploy, predict, list, delete, export, import.
 * Every catalog read and write runs as the caller (withCaller), so RLS isolates tenants.
 */
import type { TransactionSql } from 'postgres';
import { withCaller, type CallerContext } from '../db/as-caller.ts';
import type { Pool } from '../db/pool.ts';
import { apiError } from '../errors.ts';
import { beatsDeployed, deploy, describePending, ensureProject, findProject, lastTraining, pendingTraining, requireProject, type ProjectRow, type Strategy } from './catalog.ts';
import { ALGORITHMS, checkAlgorithm, checkTask, checkTrainingCaps, MLInputError, resolveHyperparams } from './hyperparams.ts';
import type { ArtifactLimits } from './artifact-limits.ts';
import { encodeModel } from './model-codec.ts';
import { toSqlModel } from './sql-model.ts';
import type { ModelMetadata, Task, TrainedModel } from './model-types.ts';
import { importOnnx } from './onnx/import.ts';
import type { PreprocessSpec } from './preprocess.ts';
import { readRelation } from './relation.ts';
import { binaryFeatureMatrix, type BinaryFormat } from './binary-rows.ts';
import { featuresToRow, predictFeatures, predictRows, type LoadedModel, type ModelCache, type Predictions } from './serving.ts';
import { TrainingCancelled, trainInWorker } from './trainer.ts';
import type { TrainingSlot, TrainingSlots } from './training-slots.ts';
import type { Metrics } from '../metrics.ts';
import type { WirePool } from '../db/wire/pool.ts';
import { runAsCallerSelected } from '../db/wire/select.ts';

export interface MlLimits extends ArtifactLimits {
  maxRows: number;
  timeoutMs: number;
  /** hyperparameter combinations a search may train (PGML_MAX_SEARCH_CANDIDATES) */
  maxSearchCandidates: number;
}

export interface MlDeps {
  pool: Pool;
  /** the one-round-trip request client, when enabled: predict's access check goes through it */
  wirePool?: WirePool | null;
  models: ModelCache;
  limits: MlLimits;
  metrics?: Metrics;
  /** this process's bounded trainings (per process and per role); unset = unbounded */
  trainings?: TrainingSlots;
}

export interface TrainRequest {
  project_name: string;
  task?: string;
  relation_name?: string;
  y_column_name?: string | string[] | null;
  algorithm?: string;
  hyperparams?: Record<string, unknown>;
  search?: 'grid' | 'random' | null;
  search_params?: Record<string, unknown>;
  search_args?: Record<string, unknown>;
  test_size?: number;
  test_sampling?: 'random' | 'first' | 'last' | 'stratified';
  preprocess?: Record<string, PreprocessSpec>;
  automatic_deploy?: boolean;
}

export interface TrainResponse {
  project: string;
  task: Task;
  algorithm: string;
  deployed: boolean;
  model_id: number;
  metrics: Record<string, number>;
}

const num = (v: unknown) => Number(v);

/** true when `values` holds at most `n` distinct values (stops counting past n) */
function distinctAtMost(values: ArrayLike<unknown>, n: number): boolean {
  const seen = new Set<unknown>();
  for (let i = 0; i < values.length; i++) {
    seen.add(values[i]);
    if (seen.size > n) return false;
  }
  return true;
}

function labelColumn(req: TrainRequest): string | null {
  const y = req.y_column_name;
  if (y === undefined || y === null) return null;
  if (Array.isArray(y)) {
    if (y.length !== 1) throw new MLInputError('y_column_name must name one column', 'multi-output training is not supported');
    return String(y[0]);
  }
  return y;
}

/**
 * Trains a model. Reads the data and records the snapshot as the caller (RLS on the training
 * data holds), trains off the event loop, then records the model, its artifacts and an automatic
 * deployment as the caller. A failure marks the model failed; nothing half-trained is deployable.
 */
export async function train(deps: MlDeps, ctx: CallerContext, req: TrainRequest, opts: TrainOptions = {}): Promise<TrainResponse> {
  // a slot first: a refused training (429) costs no read of the relation
  const own = opts.slot ? null : (deps.trainings?.acquire(ctx.role) ?? null);
  try {
    return await trainIn(deps, ctx, req, { ...opts, slot: opts.slot ?? own ?? undefined });
  } finally {
    own?.release();
  }
}

export interface TrainOptions {
  signal?: AbortSignal;
  onProgress?: (f: number) => void;
  onModel?: (id: string) => void;
  /** a slot the caller already holds (the job worker's); otherwise train() takes one */
  slot?: TrainingSlot;
}

async function trainIn(deps: MlDeps, ctx: CallerContext, sent: TrainRequest, opts: TrainOptions): Promise<TrainResponse> {
  if (!sent.project_name) throw new MLInputError('project_name is required');
  const prepared = await withCaller(deps.pool, ctx, { readOnly: false }, async (tx) => {
    const existing = await findProject(tx, sent.project_name);
    if (!sent.task && !existing) {
      throw new MLInputError(`project "${sent.project_name}" does not exist yet: pass task`, 'The first training names the task, relation_name and y_column_name');
    }
    const task = checkTask(sent.task ?? existing?.task ?? '');
    if (existing && existing.task !== task) {
      throw new MLInputError(`project "${sent.project_name}" has task ${existing.task}, not ${task}`, 'Use another project_name for another task');
    }
    const req = await repeatLastTraining(tx, sent, existing);
    const yColumn = labelColumn(req);
    if (task !== 'clustering' && yColumn === null) throw new MLInputError(`${task} needs y_column_name`);
    const algorithm = checkAlgorithm(task, req.algorithm ?? 'linear');
    resolveHyperparams(task, algorithm, req.hyperparams ?? {});
    checkTrainingCaps(req, deps.limits);
    const relationName = req.relation_name as string;
    const data = await readRelation(tx, relationName, yColumn, { maxRows: deps.limits.maxRows });
    if (data.label) {
      const nulls = data.label.kind === 'text' ? data.label.values.some((v) => v === null) : Array.prototype.some.call(data.label.values, (v: number) => Number.isNaN(v));
      if (nulls) throw new MLInputError(`the label column "${yColumn}" contains NULLs`, 'Filter them out with a view: CREATE VIEW ... WHERE label IS NOT NULL');
      if (task === 'regression' && data.label.kind !== 'numeric') {
        throw new MLInputError(`regression needs a numeric y_column_name; "${yColumn}" is ${data.described.find((c) => c.name === yColumn)?.type}`, 'Use task "classification" for labels, or cast the column');
      }
      if (task === 'classification' && distinctAtMost(data.label.values as ArrayLike<unknown>, 1)) {
        throw new MLInputError(`classification needs at least two classes; every row of "${yColumn}" in ${relationName} has the same label`, 'Check the relation (a filter or an ordered sample may have kept one class only)');
      }
    }
    const project = existing ?? (await ensureProject(tx, req.project_name, task));
    const { testSize, testSampling } = splitDefaults(task, req);
    const [snap] = await tx`insert into pgml.snapshots (relation_name, y_column_name, test_size, test_sampling, status, preprocess, owner)
      values (${relationName}, ${yColumn === null ? null : [yColumn]}, ${testSize}, ${testSampling}, 'snapshotted', ${req.preprocess ? tx.json(req.preprocess as never) : null}, ${project.owner}) returning id::text`;
    const [model] = await tx`insert into pgml.models (project_id, snapshot_id, num_features, algorithm, hyperparams, status, search, search_params, search_args, owner)
      values (${project.id}, ${snap.id}, 0, ${algorithm}, ${tx.json((req.hyperparams ?? {}) as never)}, 'in_progress', ${req.search ?? null},
              ${tx.json((req.search_params ?? {}) as never)}, ${tx.json((req.search_args ?? {}) as never)}, ${project.owner}) returning id::text`;
    return { req, yColumn, project, task, algorithm, data, snapshotId: snap.id as string, modelId: model.id as string, testSize, testSampling };
  });
  const { req, yColumn } = prepared;
  // heart-beaten until the slot is released: a model of a killed replica is failed by the sweep
  opts.slot?.track(prepared.modelId, prepared.project.owner);
  opts.onModel?.(prepared.modelId);

  let output;
  const started = performance.now();
  const recordTraining = (status: string) => {
    deps.metrics?.trainingJobs.inc({ status });
    deps.metrics?.trainingSeconds.observe({ status }, (performance.now() - started) / 1000);
  };
  try {
    output = await trainInWorker(
      {
        prepare: { task: prepared.task, columns: prepared.data.columns, label: prepared.data.label, preprocess: req.preprocess ?? {}, testSize: prepared.testSize, testSampling: prepared.testSampling },
        algorithm: prepared.algorithm,
        hyperparams: req.hyperparams ?? {},
        search: req.search ?? null,
        search_params: req.search_params ?? {},
        search_args: req.search_args ?? {},
        yColumn,
      },
      { signal: opts.signal, timeoutMs: deps.limits.timeoutMs, onProgress: opts.onProgress },
    );
  } catch (e) {
    recordTraining(e instanceof TrainingCancelled ? 'cancelled' : 'failed');
    await withCaller(deps.pool, ctx, { readOnly: false }, (tx) => tx`update pgml.models set status = 'failed', error = ${(e as Error).message} where id = ${prepared.modelId}`).catch(() => {});
    throw e;
  }
  recordTraining('succeeded');

  return withCaller(deps.pool, ctx, { readOnly: false }, async (tx) => {
    const { project, modelId } = prepared;
    const columnsJson = output.meta.columns.map((c) => ({ name: c.name, kind: c.kind, width: c.width, impute: c.impute, scale: c.scale, encode: c.encode, statistics: c.stats }));
    await tx`update pgml.snapshots set columns = ${tx.json(columnsJson as never)}, analysis = ${tx.json({ rows: prepared.data.rows, train_rows: output.trainRows, test_rows: output.testRows } as never)} where id = ${prepared.snapshotId}`;
    await tx`update pgml.models set status = 'successful', num_features = ${output.meta.featureCount}, hyperparams = ${tx.json(output.chosenHyperparams as never)},
      metrics = ${tx.json(output.metrics as never)}, metadata = ${tx.json(output.meta as never)}, search_results = ${output.searchResults ? tx.json(output.searchResults as never) : null},
      sql_model = ${sqlModelJson(tx, output.model, output.meta)}
      where id = ${modelId}`;
    await tx`insert into pgml.files (model_id, path, data, owner) values (${modelId}, 'model.onnx', ${Buffer.from(output.onnx)}, ${project.owner}), (${modelId}, 'model.json', ${Buffer.from(encodeModel(output.model))}, ${project.owner})`;
    let deployed = false;
    if (req.automatic_deploy !== false && (await beatsDeployed(tx, project, output.metrics))) {
      deployed = (await deploy(tx, project, 'new_score', { modelId })) !== null;
    }
    return { project: project.name, task: prepared.task, algorithm: prepared.algorithm, deployed, model_id: Number(modelId), metrics: output.metrics };
  });
}

/**
 * The test split when the request names none, the same for POST /models/train and SQL's
 * pgml.train (whose omitted settings reach here unset): test_size 0.25, test_sampling
 * stratified (PostgresML's default) for classification; other tasks have no classes to
 * stratify on, so they split at random (the rows stratified would pick without classes).
 */
export function splitDefaults(task: Task, req: Pick<TrainRequest, 'test_size' | 'test_sampling'>): { testSize: number; testSampling: NonNullable<TrainRequest['test_sampling']> } {
  const sampling = req.test_sampling ?? 'stratified';
  return { testSize: req.test_size ?? 0.25, testSampling: sampling === 'stratified' && task !== 'classification' ? 'random' : sampling };
}

/**
 * `pgml.train(project_name)` with no relation_name trains the project's last data again, as
 * PostgresML does (its last snapshot: relation, y column, test split, preprocessing), with the
 * last model's algorithm and hyperparameters unless the request names an algorithm. Settings the
 * request gives win.
 */
async function repeatLastTraining(tx: TransactionSql, req: TrainRequest, existing: ProjectRow | null): Promise<TrainRequest> {
  if (req.relation_name) return req;
  const last = existing ? await lastTraining(tx, existing) : null;
  if (!last) {
    throw new MLInputError(`project "${req.project_name}" has no earlier training to repeat: pass relation_name and y_column_name`, 'A project name alone trains the last data again; the first training names relation_name and y_column_name');
  }
  const out: TrainRequest = {
    ...req,
    relation_name: last.relation_name,
    y_column_name: req.y_column_name ?? last.y_column_name,
    test_size: req.test_size ?? last.test_size,
    test_sampling: req.test_sampling ?? (last.test_sampling as TrainRequest['test_sampling']),
    preprocess: req.preprocess ?? ((last.preprocess ?? undefined) as TrainRequest['preprocess']),
  };
  if (req.algorithm === undefined && last.algorithm) {
    out.algorithm = last.algorithm;
    out.hyperparams = req.hyperparams ?? last.hyperparams ?? {};
    out.search = req.search ?? (last.search as TrainRequest['search']);
    out.search_params = req.search_params ?? last.search_params ?? undefined;
    out.search_args = req.search_args ?? last.search_args ?? undefined;
  }
  return out;
}

function sqlModelJson(tx: TransactionSql, model: TrainedModel, meta: ModelMetadata) {
  const m = toSqlModel(model, meta);
  return m ? tx.json(m as never) : null;
}

export async function listProjects(deps: MlDeps, ctx: CallerContext): Promise<unknown[]> {
  return withCaller(deps.pool, ctx, { readOnly: true }, async (tx) => {
    const rows = await tx`
      select p.id, p.name, p.task::text, p.owner, p.created_at,
        (select json_build_object('model_id', m.id, 'algorithm', m.algorithm, 'metrics', m.metrics, 'deployed_at', d.created_at, 'strategy', d.strategy)
           from pgml.deployments d join pgml.models m on m.id = d.model_id where d.project_id = p.id order by d.id desc limit 1) as deployed_model,
        (select count(*) from pgml.models m where m.project_id = p.id)::int as models
      from pgml.projects p order by p.name, p.owner`;
    return rows.map((r) => ({ ...r, id: num(r.id) }));
  });
}

export async function describeProject(deps: MlDeps, ctx: CallerContext, name: string): Promise<unknown> {
  return withCaller(deps.pool, ctx, { readOnly: true }, async (tx) => {
    const p = await requireProject(tx, name);
    const models = await tx`select id, algorithm, status, hyperparams, metrics, search, search_results, num_features, error, created_at from pgml.models where project_id = ${p.id} order by id`;
    const deployments = await tx`select id, model_id, strategy::text, created_at from pgml.deployments where project_id = ${p.id} order by id`;
    const current = deployments.length ? num(deployments[deployments.length - 1].model_id) : null;
    return {
      id: num(p.id), name: p.name, task: p.task, owner: p.owner, deployed_model_id: current,
      models: models.map((m) => ({ ...m, id: num(m.id), deployed: num(m.id) === current })),
      deployments: deployments.map((d) => ({ ...d, id: num(d.id), model_id: num(d.model_id) })),
    };
  });
}

export async function deleteProject(deps: MlDeps, ctx: CallerContext, name: string): Promise<void> {
  await withCaller(deps.pool, ctx, { readOnly: false }, async (tx) => {
    const p = await requireProject(tx, name);
    const ids = await tx`select id::text from pgml.models where project_id = ${p.id}`;
    await tx`delete from pgml.projects where id = ${p.id}`;
    for (const r of ids) deps.models.evict(r.id as string);
  });
}

export async function deleteModel(deps: MlDeps, ctx: CallerContext, name: string, modelId: string): Promise<void> {
  await withCaller(deps.pool, ctx, { readOnly: false }, async (tx) => {
    const p = await requireProject(tx, name);
    const deleted = await tx`delete from pgml.models where id = ${modelId} and project_id = ${p.id} returning id`;
    if (deleted.length === 0) throw apiError(404, 'PGML404', `Model ${modelId} not found in project "${name}"`);
    deps.models.evict(modelId);
  });
}

export async function deployRequest(deps: MlDeps, ctx: CallerContext, name: string, body: { strategy?: string; algorithm?: string; model_id?: number }): Promise<{ project: string; model_id: number; strategy: string }> {
  const strategies = ['most_recent', 'best_score', 'rollback'];
  if (body.model_id === undefined && !strategies.includes(body.strategy ?? '')) {
    throw apiError(400, 'PGML400', `Unknown deploy strategy ${JSON.stringify(body.strategy)}`, null, `Use one of ${strategies.join(', ')}, or {"model_id": N}`);
  }
  return withCaller(deps.pool, ctx, { readOnly: false }, async (tx) => {
    const p = await requireProject(tx, name);
    if (body.algorithm !== undefined && !ALGORITHMS[p.task].includes(body.algorithm)) {
      throw apiError(400, 'PGML400', `Unknown algorithm "${body.algorithm}" for ${p.task}`, null, `Valid: ${ALGORITHMS[p.task].join(', ')}`);
    }
    const strategy: Strategy = body.model_id !== undefined ? 'specific' : (body.strategy as Strategy);
    const done = await deploy(tx, p, strategy, { algorithm: body.algorithm, modelId: body.model_id !== undefined ? String(body.model_id) : undefined });
    if (!done) throw apiError(404, 'PGML404', `No successful model of project "${name}"${body.algorithm ? ` with algorithm ${body.algorithm}` : ''} to deploy`);
    return { project: name, model_id: Number(done.model_id), strategy: done.strategy };
  });
}

/** The model a project serves, as the caller sees it: this lookup is also the access check. */
const DEPLOYED_MODEL_SQL = `select d.model_id::text as model_id from pgml.projects p
  cross join lateral (select model_id from pgml.deployments where project_id = p.id order by id desc limit 1) d
  where p.name = $1 order by (p.owner = current_user) desc limit 1`;

/**
 * The caller's deployed model: one read-only statement as the caller (one round trip on the
 * pipeline client); the artifact is loaded, again as the caller, only when not yet in memory.
 */
async function deployedModel(deps: MlDeps, ctx: CallerContext, name: string) {
  const rows = await runAsCallerSelected(deps, ctx, { text: DEPLOYED_MODEL_SQL, params: [name] }, { readOnly: true, shareWrite: true });
  const modelId = rows[0]?.model_id as string | undefined;
  if (modelId) {
    const loaded = deps.models.peek(modelId);
    if (loaded) return loaded;
  }
  return withCaller(deps.pool, ctx, { readOnly: true }, async (tx) => {
    if (!modelId) {
      const pending = await pendingTraining(tx, name);
      if (pending) {
        throw apiError(404, 'PGML404', `Project "${name}" has no deployed model yet: its training (job ${pending.id}) is ${describePending(pending)}`, null, `Wait for it: GET /models/jobs/${pending.id}`);
      }
      const p = await findProject(tx, name);
      if (!p) throw apiError(404, 'PGML404', `Project "${name}" not found`, null, 'List your projects with GET /models');
      throw apiError(404, 'PGML404', `Project "${name}" has no deployed model`, null, `Deploy one with POST /models/${name}/deploy`);
    }
    return deps.models.get(tx, modelId);
  });
}

export interface PredictBody {
  features?: unknown;
  rows?: unknown;
}

/** PostgresML's predict over HTTP: one row, many rows, or rows by column name. */
export async function predict(deps: MlDeps, ctx: CallerContext, name: string, sent: PredictBody | undefined, withProba: boolean): Promise<Record<string, unknown>> {
  const model = await deployedModel(deps, ctx, name);
  const body: PredictBody = sent !== null && typeof sent === 'object' ? sent : {};
  const meta = model.meta;
  let rows: unknown[][] | Record<string, unknown>[];
  let single = false;
  if (body.rows !== undefined) {
    if (!Array.isArray(body.rows) || body.rows.some((r) => r === null || typeof r !== 'object' || Array.isArray(r))) {
      throw new MLInputError('rows must be an array of objects {column: value}');
    }
    rows = body.rows as Record<string, unknown>[];
  } else if (Array.isArray(body.features)) {
    const f = body.features;
    single = f.length > 0 && !Array.isArray(f[0]);
    rows = (single ? [f] : (f as unknown[][])).map((r) => featuresToRow(meta.columns, r));
  } else {
    throw new MLInputError('send {"features": [...]}, {"features": [[...], ...]} or {"rows": [{column: value}, ...]}');
  }
  if (rows.length === 0) throw new MLInputError('no rows to predict');
  const t0 = performance.now();
  const out = await predictRows(model, rows);
  observePrediction(deps, name, model, rows.length, t0);
  return predictionAnswer(name, model, out, rows.length, withProba, single);
}

/**
 * Predict with a binary body (binary-rows.ts): rows × features little-endian floats. Same access
 * check and the same answer as a JSON batch.
 */
export async function predictBinary(deps: MlDeps, ctx: CallerContext, name: string, body: Uint8Array | undefined, format: BinaryFormat, withProba: boolean): Promise<Record<string, unknown>> {
  const model = await deployedModel(deps, ctx, name);
  if (!model.native) {
    throw new MLInputError(`model ${model.id} of "${name}" takes JSON bodies only`, 'it was imported without a native form', 'Send {"features": [[...], ...]} as JSON');
  }
  const t0 = performance.now();
  const { x, rows } = binaryFeatureMatrix(model, body, format);
  const out = await predictFeatures(model, x, rows);
  observePrediction(deps, name, model, rows, t0);
  return predictionAnswer(name, model, out, rows, withProba, false);
}

function observePrediction(deps: MlDeps, name: string, model: LoadedModel, rows: number, t0: number): void {
  deps.metrics?.predictionDuration.observe((performance.now() - t0) / 1000);
  deps.metrics?.countPredictions(name, model.id, rows);
  deps.metrics?.predictionBatchRows.observe(rows);
}

function predictionAnswer(name: string, model: LoadedModel, out: Predictions, rows: number, withProba: boolean, single: boolean): Record<string, unknown> {
  const meta = model.meta;
  const label = (i: number) => {
    if (meta.task === 'classification') return meta.classes ? meta.classes[out.values[i]] : out.values[i];
    return out.values[i];
  };
  if (withProba) {
    if (meta.task !== 'classification' || !out.probabilities) throw apiError(400, 'PGML400', `predict_proba needs a classification project; "${name}" is ${meta.task}`);
    const probs: number[][] = [];
    for (let i = 0; i < rows; i++) probs.push(Array.from(out.probabilities.subarray(i * out.k, (i + 1) * out.k)));
    return { model_id: Number(model.id), classes: meta.classes ?? [], probabilities: probs };
  }
  if (single) return { model_id: Number(model.id), prediction: label(0) };
  return { model_id: Number(model.id), predictions: Array.from({ length: rows }, (_, i) => label(i)) };
}

export async function modelOnnx(deps: MlDeps, ctx: CallerContext, name: string, modelId: string): Promise<Uint8Array> {
  return withCaller(deps.pool, ctx, { readOnly: true }, async (tx) => {
    const p = await requireProject(tx, name);
    const rows = await tx`select f.data from pgml.files f join pgml.models m on m.id = f.model_id where m.id = ${modelId} and m.project_id = ${p.id} and f.path = 'model.onnx'`;
    if (rows.length === 0) throw apiError(404, 'PGML404', `Model ${modelId} not found in project "${name}"`);
    return rows[0].data as Uint8Array;
  });
}

export interface ImportBody {
  task: string;
  onnx: string;
  classes?: (string | number | boolean)[];
  feature_names?: string[];
  algorithm?: string;
  metrics?: Record<string, number>;
  deploy?: boolean;
}

/** Uploads an ONNX model trained elsewhere (sklearn-onnx, onnxmltools xgboost exports). */
export async function importModel(deps: MlDeps, ctx: CallerContext, name: string, body: ImportBody): Promise<{ project: string; model_id: number; deployed: boolean; native: boolean }> {
  const task = checkTask(body.task);
  const bytes = new Uint8Array(Buffer.from(body.onnx ?? '', 'base64'));
  const imported = await importOnnx(bytes, { task, classes: body.classes, feature_names: body.feature_names, algorithm: body.algorithm, limits: deps.limits });
  return withCaller(deps.pool, ctx, { readOnly: false }, async (tx) => {
    let project = await findProject(tx, name);
    if (project && project.task !== task) throw new MLInputError(`project "${name}" has task ${project.task}, not ${task}`);
    project ??= await ensureProject(tx, name, task);
    const meta = { ...imported.meta, labelValues: imported.labelValues };
    // one INSERT: a successful model's columns are immutable (sql/006)
    const sqlModel = imported.native ? sqlModelJson(tx, imported.native, meta) : null;
    const [model] = await tx`insert into pgml.models (project_id, num_features, algorithm, runtime, hyperparams, status, metrics, metadata, sql_model, owner)
      values (${project.id}, ${meta.featureCount}, ${meta.algorithm}, 'onnx', '{}', 'successful', ${tx.json((body.metrics ?? {}) as never)}, ${tx.json(meta as never)}, ${sqlModel}, ${project.owner}) returning id::text`;
    await tx`insert into pgml.files (model_id, path, data, owner) values (${model.id}, 'model.onnx', ${Buffer.from(imported.onnx)}, ${project.owner})`;
    if (imported.native) await tx`insert into pgml.files (model_id, path, data, owner) values (${model.id}, 'model.json', ${Buffer.from(encodeModel(imported.native))}, ${project.owner})`;
    let deployed = false;
    if (body.deploy !== false) deployed = (await deploy(tx, project, 'specific', { modelId: model.id as string })) !== null;
    return { project: name, model_id: Number(model.id), deployed, native: imported.native !== undefined };
  });
}
