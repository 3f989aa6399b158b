/**
 * The pgml catalog, always read and written inside a transaction that runs as the caller, so
 * RLS decides what a role may see and change.
 */
import type { TransactionSql } from 'postgres';
import { apiError } from '../errors.ts';
import { KEY_METRIC, MLInputError } from './hyperparams.ts';
import type { Task } from './model-types.ts';

export interface ProjectRow {
  id: string;
  name: string;
  task: Task;
  owner: string;
}

export const DEPLOY_CHANNEL = 'pgml_deploy';

/** The caller's project of that name: its own first, else one shared with it through a role. */
export async function findProject(tx: TransactionSql, name: string): Promise<ProjectRow | null> {
  const rows = await tx`
    select id::text, name, task::text, owner from pgml.projects where name = ${name}
    order by (owner = current_user) desc, id limit 2`;
  if (rows.length === 0) return null;
  if (rows.length > 1 && rows[0].owner !== (await tx`select current_user as u`)[0].u) {
    throw apiError(300, 'PGML300', `More than one project named "${name}" is visible to this role`, `Owners: ${rows.map((r) => r.owner).join(', ')}`, 'Rename one of them');
  }
  return rows[0] as unknown as ProjectRow;
}

/**
 * The caller's own project of that name, created if it does not exist. Idempotent under
 * concurrency: requests racing to create it all get the one row (INSERT ... ON CONFLICT DO
 * NOTHING waits for the winner to commit, then the SELECT sees it).
 */
export async function ensureProject(tx: TransactionSql, name: string, task: Task): Promise<ProjectRow> {
  const inserted = await tx`insert into pgml.projects (name, task) values (${name}, ${task}) on conflict (owner, name) do nothing returning id::text, name, task::text, owner`;
  const project = (inserted[0] ?? (await tx`select id::text, name, task::text, owner from pgml.projects where owner = current_user and name = ${name}`)[0]) as unknown as ProjectRow | undefined;
  if (!project) throw apiError(409, 'PGML409', `Project "${name}" could not be created`);
  if (project.task !== task) {
    throw new MLInputError(`project "${name}" has task ${project.task}, not ${task}`, '', 'Use another project_name for another task');
  }
  return project;
}

export function projectNotFound(name: string) {
  return apiError(404, 'PGML404', `Project "${name}" not found`, null, 'List your projects with GET /models; train one with POST /models/train');
}

export async function requireProject(tx: TransactionSql, name: string): Promise<ProjectRow> {
  const p = await findProject(tx, name);
  if (!p) throw projectNotFound(name);
  return p;
}

export async function deployedModelId(tx: TransactionSql, projectId: string): Promise<string | null> {
  const rows = await tx`select model_id::text from pgml.deployments where project_id = ${projectId} order by id desc limit 1`;
  return rows.length ? (rows[0].model_id as string) : null;
}

export type Strategy = 'most_recent' | 'best_score' | 'rollback' | 'new_score' | 'specific';

/**
 * Picks and deploys a model of the project in the caller's transaction, then notifies every
 * replica. Scores are compared numerically (PostgresML sorts them as text).
 */
export async function deploy(tx: TransactionSql, project: ProjectRow, strategy: Strategy, opts: { algorithm?: string; modelId?: string } = {}): Promise<{ model_id: string; strategy: Strategy } | null> {
  const metric = KEY_METRIC[project.task];
  let rows;
  const algo = opts.algorithm ?? null;
  switch (strategy) {
    case 'most_recent':
      rows = await tx`select id::text from pgml.models where project_id = ${project.id} and status = 'successful' and (${algo}::text is null or algorithm = ${algo}) order by id desc limit 1`;
      break;
    case 'best_score':
      rows = await tx`select id::text from pgml.models where project_id = ${project.id} and status = 'successful' and (${algo}::text is null or algorithm = ${algo})
        and (metrics->>${metric}) is not null order by (metrics->>${metric})::float8 desc, id desc limit 1`;
      break;
    case 'rollback': {
      const history = await tx`select model_id::text from pgml.deployments where project_id = ${project.id} order by id desc`;
      if (history.length === 0) throw apiError(400, 'PGML400', `Project "${project.name}" has no deployment to roll back`);
      const current = history[0].model_id as string;
      const previous = history.find((h) => h.model_id !== current);
      if (!previous) throw apiError(400, 'PGML400', `Project "${project.name}" has no earlier deployment to roll back to`);
      rows = [{ id: previous.model_id }];
      break;
    }
    case 'specific':
    case 'new_score':
      rows = await tx`select id::text from pgml.models where project_id = ${project.id} and id = ${opts.modelId ?? '0'} and status = 'successful'`;
      if (rows.length === 0) throw apiError(404, 'PGML404', `Model ${opts.modelId} not found in project "${project.name}" or not successfully trained`);
      break;
  }
  if (!rows || rows.length === 0) return null;
  const modelId = rows[0].id as string;
  await tx`insert into pgml.deployments (project_id, model_id, strategy, owner) values (${project.id}, ${modelId}, ${strategy}, ${project.owner})`;
  await tx`select pg_notify(${DEPLOY_CHANNEL}, ${JSON.stringify({ project_id: project.id, model_id: modelId })})`;
  return { model_id: modelId, strategy };
}

/** True when `metrics` beat the deployed model's on the task's key metric (or nothing is deployed). */
export async function beatsDeployed(tx: TransactionSql, project: ProjectRow, metrics: Record<string, number>): Promise<boolean> {
  const current = await deployedModelId(tx, project.id);
  if (!current) return true;
  const metric = KEY_METRIC[project.task];
  const rows = await tx`select (metrics->>${metric})::float8 as score from pgml.models where id = ${current}`;
  const deployedScore = rows[0]?.score as number | null;
  const score = metrics[metric];
  if (score === undefined || Number.isNaN(score)) return false;
  return deployedScore === null || deployedScore === undefined || score > deployedScore;
}

/** What a project was last trained with: the last snapshot's data and split, the last model's algorithm. */
export interface LastTraining {
  relation_name: string;
  y_column_name: string | null;
  test_size: number;
  test_sampling: string;
  preprocess: Record<string, unknown> | null;
  algorithm: string | null;
  hyperparams: Record<string, unknown> | null;
  search: string | null;
  search_params: Record<string, unknown> | null;
  search_args: Record<string, unknown> | null;
}

/**
 * The training that `pgml.train(project_name)` alone repeats, as PostgresML does: the project's
 * last snapshot (relation, y column, test split, preprocessing); and the algorithm and
 * hyperparameters of its last successful model (else its last model). Null when the project
 * was never trained from a relation. Same rules as pgml._train_params in sql/009.
 */
export async function lastTraining(tx: TransactionSql, project: ProjectRow): Promise<LastTraining | null> {
  const [snap] = await tx`
    select s.relation_name, s.y_column_name[1] as y_column_name, s.test_size::float8 as test_size, s.test_sampling::text as test_sampling, s.preprocess
    from pgml.models m join pgml.snapshots s on s.id = m.snapshot_id
    where m.project_id = ${project.id} order by m.id desc limit 1`;
  if (!snap) return null;
  const [model] = await tx`
    select algorithm, hyperparams, search, nullif(search_params, '{}') as search_params, nullif(search_args, '{}') as search_args
    from pgml.models where project_id = ${project.id} order by (status = 'successful') desc, id desc limit 1`;
  return { ...(snap as unknown as LastTraining), algorithm: null, hyperparams: null, search: null, search_params: null, search_args: null, ...(model ?? {}) };
}

/**
 * The caller's training of a project that has not deployed a model yet (queued or running), for
 * an answer that says so instead of "not found".
 */
export async function pendingTraining(tx: TransactionSql, name: string): Promise<{ id: number; status: string; progress: number } | null> {
  const rows = await tx`
    select id::int, status, progress from pgml.jobs where params->>'project_name' = ${name} and status in ('queued', 'running')
    order by (owner = current_user) desc, id desc limit 1`;
  return (rows[0] as unknown as { id: number; status: string; progress: number } | undefined) ?? null;
}

/** "queued" or "running (40%)" */
export function describePending(p: { id: number; status: string; progress: number }): string {
  return p.status === 'queued' ? 'queued' : `running (${Math.round(p.progress * 100)}%)`;
}
