/**
 * Per-algorithm hyperparameter schemas (PostgresML / scikit-learn / xgboost names), the valid
 * algorithms per task, and MLInputError, the error every user-input problem in src/ml throws.
 */
import type { Task } from './model-types.ts';
import { ApiError, apiError } from '../errors.ts';

/** A problem with what the user asked for; `details` and `hint` follow PostgREST's error body. */
export class MLInputError extends Error {
  details: string;
  hint: string;
  constructor(message: string, details = '', hint = '') {
    super(message);
    this.name = 'MLInputError';
    this.details = details;
    this.hint = hint;
  }

  toApiError(): ApiError {
    return apiError(400, 'PGML400', this.message, this.details || null, this.hint || null);
  }
}

export const TASKS: readonly Task[] = ['regression', 'classification', 'clustering'];

export const ALGORITHMS: Readonly<Record<Task, readonly string[]>> = {
  regression: ['linear', 'ridge', 'lasso', 'elastic_net', 'decision_tree', 'random_forest', 'xgboost'],
  classification: ['linear', 'logistic', 'decision_tree', 'random_forest', 'xgboost'],
  clustering: ['kmeans'],
};

/** The metric that ranks models and picks the search winner (higher is better for all three). */
export const KEY_METRIC: Readonly<Record<Task, string>> = {
  regression: 'r2',
  classification: 'f1',
  clustering: 'silhouette',
};

type ValueType = 'number' | 'integer' | 'string' | 'boolean' | 'null';
export type HyperValue = number | string | boolean | null;
export type Hyperparams = Record<string, HyperValue>;

export interface ParamSpec {
  types: ValueType[];
  default: HyperValue;
  min?: number;
  max?: number;
  /** exclusive lower bound */
  gt?: number;
  /** allowed strings when 'string' is one of the types */
  values?: string[];
  /** other accepted names for the same parameter (xgboost's eta, lambda, alpha, ...) */
  aliases?: string[];
  /** accepted for compatibility, has no effect */
  ignored?: boolean;
}

type Schema = Record<string, ParamSpec>;

const num = (def: number, extra: Partial<ParamSpec> = {}): ParamSpec => ({ types: ['number'], default: def, ...extra });
const int = (def: number, extra: Partial<ParamSpec> = {}): ParamSpec => ({ types: ['integer'], default: def, ...extra });
const bool = (def: boolean, extra: Partial<ParamSpec> = {}): ParamSpec => ({ types: ['boolean'], default: def, ...extra });
const seed = (): ParamSpec => int(0, { aliases: ['seed'] });
const threads = (): ParamSpec => ({ types: ['integer', 'null'], default: null, min: -1, aliases: ['nthread'] });

const LINEAR: Schema = { fit_intercept: bool(true) };
const RIDGE: Schema = { alpha: num(1, { min: 0 }), fit_intercept: bool(true) };
const LASSO: Schema = {
  alpha: num(1, { min: 0 }),
  fit_intercept: bool(true),
  max_iter: int(1000, { min: 1 }),
  tol: num(1e-4, { gt: 0 }),
};
const ELASTIC_NET: Schema = { ...LASSO, l1_ratio: num(0.5, { min: 0, max: 1 }) };
const LOGISTIC: Schema = {
  C: num(1, { gt: 0 }),
  max_iter: int(100, { min: 1 }),
  tol: num(1e-4, { gt: 0 }),
  fit_intercept: bool(true),
  penalty: { types: ['string', 'null'], default: 'l2', values: ['l2', 'none'] },
};

const treeCommon = (task: 'regression' | 'classification', forest: boolean): Schema => ({
  max_depth: { types: ['integer', 'null'], default: null, min: 1 },
  min_samples_split: int(2, { min: 2 }),
  min_samples_leaf: int(1, { min: 1 }),
  max_features: {
    types: ['number', 'string', 'null'],
    default: forest && task === 'classification' ? 'sqrt' : forest ? 1.0 : null,
    gt: 0,
    values: ['sqrt', 'log2'],
  },
  max_bin: int(256, { min: 2, max: 256 }),
  random_state: seed(),
  criterion: {
    types: ['string'],
    default: task === 'classification' ? 'gini' : 'squared_error',
    values: task === 'classification' ? ['gini'] : ['squared_error'],
  },
});

const FOREST_EXTRA: Schema = {
  n_estimators: int(100, { min: 1 }),
  bootstrap: bool(true),
  n_jobs: { ...threads(), ignored: true },
};

const XGBOOST: Schema = {
  n_estimators: int(100, { min: 1, aliases: ['num_boost_round', 'boost_rounds'] }),
  learning_rate: num(0.3, { gt: 0, aliases: ['eta'] }),
  max_depth: int(6, { min: 1, max: 64 }),
  min_child_weight: num(1, { min: 0 }),
  gamma: num(0, { min: 0, aliases: ['min_split_loss'] }),
  reg_lambda: num(1, { min: 0, aliases: ['lambda'] }),
  reg_alpha: num(0, { min: 0, aliases: ['alpha'] }),
  subsample: num(1, { gt: 0, max: 1 }),
  colsample_bytree: num(1, { gt: 0, max: 1 }),
  max_bin: int(256, { min: 2, max: 256 }),
  base_score: { types: ['number', 'null'], default: null },
  objective: {
    types: ['string', 'null'],
    default: null,
    values: ['reg:squarederror', 'binary:logistic', 'multi:softmax', 'multi:softprob'],
  },
  random_state: seed(),
  n_jobs: threads(),
  tree_method: { types: ['string'], default: 'hist', values: ['hist', 'auto', 'approx'], ignored: true },
  booster: { types: ['string'], default: 'gbtree', values: ['gbtree'] },
  eval_metric: { types: ['string', 'null'], default: null, ignored: true },
  verbosity: { types: ['integer'], default: 0, ignored: true },
};

const KMEANS: Schema = {
  n_clusters: int(8, { min: 1 }),
  max_iter: int(300, { min: 1 }),
  tol: num(1e-4, { min: 0 }),
  n_init: int(1, { min: 1 }),
  init: { types: ['string'], default: 'k-means++', values: ['k-means++', 'random'] },
  random_state: seed(),
};

const SCHEMAS: Record<Task, Record<string, Schema>> = {
  regression: {
    linear: LINEAR,
    ridge: RIDGE,
    lasso: LASSO,
    elastic_net: ELASTIC_NET,
    decision_tree: treeCommon('regression', false),
    random_forest: { ...treeCommon('regression', true), ...FOREST_EXTRA },
    xgboost: XGBOOST,
  },
  classification: {
    linear: LOGISTIC,
    logistic: LOGISTIC,
    decision_tree: treeCommon('classification', false),
    random_forest: { ...treeCommon('classification', true), ...FOREST_EXTRA },
    xgboost: XGBOOST,
  },
  clustering: { kmeans: KMEANS },
};

export function checkTask(task: string): Task {
  if (!(TASKS as readonly string[]).includes(task)) {
    throw new MLInputError(
      `unknown task "${task}"`,
      `valid tasks: ${TASKS.join(', ')}`,
      'pass task => one of the valid tasks',
    );
  }
  return task as Task;
}

export function checkAlgorithm(task: Task, algorithm: string): string {
  const valid = ALGORITHMS[task];
  if (!valid.includes(algorithm)) {
    throw new MLInputError(
      `algorithm "${algorithm}" is not available for ${task}`,
      `valid algorithms for ${task}: ${valid.join(', ')}`,
      'pass algorithm => one of the valid algorithms',
    );
  }
  return algorithm;
}

export function schemaFor(task: Task, algorithm: string): Schema {
  checkAlgorithm(task, algorithm);
  return SCHEMAS[task][algorithm];
}

function typeOf(v: unknown): ValueType | 'other' {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number' && Number.isFinite(v)) return Number.isInteger(v) ? 'integer' : 'number';
  return 'other';
}

function checkValue(algorithm: string, name: string, spec: ParamSpec, v: unknown): HyperValue {
  const t = typeOf(v);
  const ok = t !== 'other' && (spec.types.includes(t) || (t === 'integer' && spec.types.includes('number')));
  const expected = spec.types.join(' | ') + (spec.values ? ` (${spec.values.map((s) => JSON.stringify(s)).join(', ')})` : '');
  const bad = (why: string) =>
    new MLInputError(
      `invalid value ${JSON.stringify(v)} for hyperparameter "${name}" of ${algorithm}: ${why}`,
      `expected ${expected}`,
      `the default is ${JSON.stringify(spec.default)}`,
    );
  if (!ok) throw bad('wrong type');
  if (t === 'string' && spec.values && !spec.values.includes(v as string)) throw bad('not an allowed value');
  if (typeof v === 'number') {
    if (spec.min !== undefined && v < spec.min) throw bad(`must be >= ${spec.min}`);
    if (spec.max !== undefined && v > spec.max) throw bad(`must be <= ${spec.max}`);
    if (spec.gt !== undefined && v <= spec.gt) throw bad(`must be > ${spec.gt}`);
  }
  return v as HyperValue;
}

/**
 * Validates user hyperparameters and returns them under canonical names with every default
 * filled in. Unknown names, aliases given twice and wrong types throw MLInputError.
 */
export function resolveHyperparams(task: Task, algorithm: string, given: Record<string, unknown> | null | undefined): Hyperparams {
  const schema = schemaFor(task, algorithm);
  const byName = new Map<string, string>();
  for (const [name, spec] of Object.entries(schema)) {
    byName.set(name, name);
    for (const a of spec.aliases ?? []) byName.set(a, name);
  }
  const out: Hyperparams = {};
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(given ?? {})) {
    const canonical = byName.get(key);
    if (canonical === undefined) {
      throw new MLInputError(
        `unknown hyperparameter "${key}" for ${task} algorithm ${algorithm}`,
        `valid hyperparameters: ${validNames(schema).join(', ')}`,
        'remove it or use one of the valid names',
      );
    }
    const prev = seen.get(canonical);
    if (prev !== undefined) {
      throw new MLInputError(
        `hyperparameters "${prev}" and "${key}" are the same parameter`,
        `"${key}" is an alias of "${canonical}"`,
        'give only one of them',
      );
    }
    seen.set(canonical, key);
    out[canonical] = checkValue(algorithm, key, schema[canonical], value);
  }
  for (const [name, spec] of Object.entries(schema)) {
    if (!(name in out)) out[name] = spec.default;
  }
  return out;
}

/** Names (with aliases) accepted by an algorithm, for error messages and search validation. */
export function validNames(schema: Schema): string[] {
  const names: string[] = [];
  for (const [name, spec] of Object.entries(schema)) {
    names.push(name, ...(spec.aliases ?? []));
  }
  return names;
}

export function numberParam(p: Hyperparams, name: string): number {
  const v = p[name];
  if (typeof v !== 'number') throw new Error(`internal: hyperparameter ${name} is not a number`);
  return v;
}

/** Configured caps on what a training may build (PGML_MAX_TREES, PGML_MAX_TREE_DEPTH, ...). */
export interface TrainingCaps {
  maxTrees: number;
  maxTreeDepth: number;
  maxClasses: number;
  maxSearchCandidates: number;
}

const CAPPED: { names: string[]; cap: keyof TrainingCaps; setting: string }[] = [
  { names: ['n_estimators', 'num_boost_round', 'boost_rounds'], cap: 'maxTrees', setting: 'PGML_MAX_TREES' },
  { names: ['max_depth'], cap: 'maxTreeDepth', setting: 'PGML_MAX_TREE_DEPTH' },
  { names: ['n_clusters'], cap: 'maxClasses', setting: 'PGML_MAX_CLASSES' },
];

function capError(what: string, value: unknown, limit: number, setting: string): MLInputError {
  return new MLInputError(`${what} = ${JSON.stringify(value)} is above the limit of ${limit}`, `limit ${setting} = ${limit}`,
    `lower ${what.replace(/^hyperparameter /, '')}, or ask the operator to raise ${setting}`);
}

/**
 * Refuses (400) a training whose hyperparameters or search would build more than the caps allow:
 * every value given directly or in search_params, and the number of search candidates.
 */
export function checkTrainingCaps(
  req: { hyperparams?: Record<string, unknown> | null; search?: string | null; search_params?: Record<string, unknown> | null; search_args?: Record<string, unknown> | null },
  caps: TrainingCaps,
): void {
  const values = (name: string): unknown[] => {
    const direct = req.hyperparams?.[name];
    const searched = req.search ? req.search_params?.[name] : undefined;
    return [...(direct === undefined ? [] : [direct]), ...(Array.isArray(searched) ? searched : [])];
  };
  for (const { names, cap, setting } of CAPPED) {
    for (const name of names) {
      for (const v of values(name)) {
        if (typeof v === 'number' && v > caps[cap]) throw capError(`hyperparameter "${name}"`, v, caps[cap], setting);
      }
    }
  }
  if (!req.search) return;
  const params = Object.values(req.search_params ?? {});
  const grid = params.reduce<number>((n, v) => n * (Array.isArray(v) ? Math.max(1, v.length) : 1), 1);
  if (req.search === 'grid' && grid > caps.maxSearchCandidates) {
    throw capError('the search grid size', grid, caps.maxSearchCandidates, 'PGML_MAX_SEARCH_CANDIDATES');
  }
  const nIter = req.search_args?.n_iter;
  if (req.search === 'random' && typeof nIter === 'number' && nIter > caps.maxSearchCandidates) {
    throw capError('search_args n_iter', nIter, caps.maxSearchCandidates, 'PGML_MAX_SEARCH_CANDIDATES');
  }
}
