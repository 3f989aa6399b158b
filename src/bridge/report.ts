/**
 * One validation of a bridge report (the detail of a NOTICE 'pgml.bridge'). Any role can raise
 * such a notice, through pgml._report or with RAISE directly, so a report is hostile input: it
 * becomes a BridgeCall only when every field has the type, form and size the stubs of sql/004
 * produce, and it never names anything the caller could not name in SQL itself (the model of a
 * predict is still checked as the caller before it is used, see compute.ts).
 */
import type { BridgeCall } from './calls.ts';

export interface BridgeLimits {
  /** distinct calls one round may report (PGML_BRIDGE_MAX_CALLS) */
  maxCalls: number;
  /** bytes of report details one round may send (PGML_BRIDGE_MAX_ROUND_BYTES) */
  maxRoundBytes: number;
  /** features of one predict call (PGML_BRIDGE_MAX_FEATURES) */
  maxFeatures: number;
  /** characters of one embed input (PGML_EMBED_MAX_INPUT_CHARS) */
  maxInputChars: number;
}

/** Why a report was refused: `setting` names the limit when one was exceeded. */
export class ReportRefused extends Error {
  constructor(message: string, readonly setting: string | null = null) {
    super(message);
  }
}

const EMBED_KEY = /^e:[0-9a-f]{32}$/;
const PREDICT_KEY = /^p:(\d{1,19}):[0-9a-f]{32}(:proba)?$/;
// the embedder's own name rule (src/embed/model-dir.ts) is checked again where the model loads
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,199})?$/;
const NON_FINITE: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The call a report of round `bridgeId` describes, or ReportRefused. */
export function parseReport(detail: string, bridgeId: string, limits: BridgeLimits): BridgeCall {
  let raw: unknown;
  try {
    raw = JSON.parse(detail);
  } catch {
    throw new ReportRefused('the report is not JSON');
  }
  if (!isObject(raw)) throw new ReportRefused('the report is not a JSON object');
  if (raw.bridge_id !== bridgeId) throw new ReportRefused('the report does not carry the bridge id of this statement');
  const key = raw.key;
  if (typeof key !== 'string') throw new ReportRefused('"key" must be a string');
  switch (raw.fn) {
    case 'embed':
      return embedCall(raw, key, limits);
    case 'predict':
    case 'predict_proba':
      return predictCall(raw, raw.fn, key, limits);
    default:
      throw new ReportRefused('"fn" must be embed, predict or predict_proba');
  }
}

function embedCall(raw: Json, key: string, limits: BridgeLimits): BridgeCall {
  if (!EMBED_KEY.test(key)) throw new ReportRefused('"key" is not an embed key');
  const { model, input } = raw;
  if (typeof model !== 'string' || !MODEL_NAME.test(model) || model.split('/').some((p) => p === '.' || p === '..')) {
    throw new ReportRefused('"model" must be a model name such as "name" or "org/name"');
  }
  if (typeof input !== 'string') throw new ReportRefused('"input" must be a string');
  if (input.length > limits.maxInputChars) {
    throw new ReportRefused(`an embed input has ${input.length} characters (at most ${limits.maxInputChars})`, 'PGML_EMBED_MAX_INPUT_CHARS');
  }
  const kwargs = raw.kwargs ?? {};
  if (!isObject(kwargs)) throw new ReportRefused('"kwargs" must be a JSON object');
  if (kwargs.pooling !== undefined && kwargs.pooling !== 'mean' && kwargs.pooling !== 'cls') throw new ReportRefused('kwargs "pooling" must be "mean" or "cls"');
  if (kwargs.normalize !== undefined && typeof kwargs.normalize !== 'boolean') throw new ReportRefused('kwargs "normalize" must be true or false');
  // only what the embedder uses travels on: the rest of kwargs cannot reach it
  const clean: Record<string, unknown> = {};
  if (kwargs.pooling !== undefined) clean.pooling = kwargs.pooling;
  if (kwargs.normalize !== undefined) clean.normalize = kwargs.normalize;
  return { fn: 'embed', key, model, input, kwargs: clean };
}

function predictCall(raw: Json, fn: 'predict' | 'predict_proba', key: string, limits: BridgeLimits): BridgeCall {
  const m = PREDICT_KEY.exec(key);
  const id = raw.model_id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw new ReportRefused('"model_id" must be a positive integer');
  // the key is what the stub looks the result up by: it must be this model's, of this fn
  if (!m || m[1] !== String(id) || Boolean(m[2]) !== (fn === 'predict_proba')) throw new ReportRefused('"key" does not match the model and function');
  const features = raw.features;
  if (!Array.isArray(features)) throw new ReportRefused('"features" must be an array');
  if (features.length > limits.maxFeatures) {
    throw new ReportRefused(`a predict call has ${features.length} features (at most ${limits.maxFeatures})`, 'PGML_BRIDGE_MAX_FEATURES');
  }
  const values = new Array<number | null>(features.length);
  for (let i = 0; i < features.length; i++) {
    const v: unknown = features[i];
    // to_jsonb(real[]) writes NaN and the infinities as strings
    if (v === null || typeof v === 'number') values[i] = v;
    else if (typeof v === 'string' && Object.hasOwn(NON_FINITE, v)) values[i] = NON_FINITE[v];
    else throw new ReportRefused(`"features"[${i}] must be a number or null`);
  }
  return { fn, key, model_id: id, features: values };
}
