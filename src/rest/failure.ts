import { RequestAborted, StageError } from '../db/as-caller.ts';
import { DatabaseUnavailableError, PoolTimeoutError } from '../db/pool.ts';
import { ApiError, apiError, fromPgError, isPgError } from './errors.ts';
import { MLInputError } from '../ml/hyperparams.ts';
import { OnnxImportError } from '../ml/onnx/import-error.ts';
import { TrainingCancelled } from '../ml/trainer.ts';
import { EmbedInputError, ModelLoadError, UnknownModelError } from '../embed/errors.ts';

/** Any failure on the request path → PostgREST's status and body. */
export function toApiError(e: unknown, authenticated: boolean): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof MLInputError || e instanceof OnnxImportError) {
    return apiError(400, 'PGML400', e.message, (e as { details?: string }).details || null, (e as { hint?: string }).hint || null);
  }
  if (e instanceof UnknownModelError) {
    return apiError(404, 'PGML404', e.message, null, e.available.length ? `Available models: ${e.available.join(', ')}` : 'No models in PGML_MODEL_DIR; create one with npm run make-model');
  }
  if (e instanceof EmbedInputError) return apiError(400, 'PGML400', e.message, null, null);
  if (e instanceof ModelLoadError) return apiError(500, 'PGML500', e.message, null, 'Check the model directory layout (config.json, tokenizer.json, onnx/model.onnx)');
  if (e instanceof TrainingCancelled) return apiError(409, 'PGML409', e.message, null, null);
  if (e instanceof RequestAborted) return apiError(499, 'PGML499', e.message);
  if (e instanceof PoolTimeoutError) {
    return apiError(504, 'PGRST003', 'Timed out acquiring connection from connection pool.', `No connection became free within ${e.waitedMs} ms`, 'Raise PGRST_DB_POOL or PGRST_DB_POOL_ACQUISITION_TIMEOUT, or look for long-running requests');
  }
  if (e instanceof DatabaseUnavailableError) {
    const err = apiError(503, 'PGRST001', 'Database connection error. Retrying the connection.', String((e.cause as Error)?.message ?? e.cause), null);
    err.headers['Retry-After'] = '1';
    return err;
  }
  if (e instanceof StageError) {
    const cause = e.cause;
    if (e.stage === 'setup' && isPgError(cause)) {
      // the role switch failed: the token names a role that does not exist or that we may not become
      if ((cause.code === '22023' || cause.code === '42704') && /^role .* does not exist$/.test(cause.message)) {
        return new ApiError(401, { code: 'PGRST301', message: cause.message, details: 'The JWT role claim names a role that does not exist', hint: null }, { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="role does not exist"' });
      }
      if (cause.code === '42501') {
        return new ApiError(authenticated ? 403 : 401, { code: '42501', message: cause.message, details: 'The authenticator role is not a member of the requested role', hint: `GRANT the role TO the connecting role` }, authenticated ? {} : { 'WWW-Authenticate': 'Bearer' });
      }
    }
    return toApiError(cause, authenticated);
  }
  if (isPgError(e)) {
    const mapped = fromPgError(e, authenticated);
    if (mapped.status === 503) mapped.headers['Retry-After'] = '1';
    return mapped;
  }
  return apiError(500, 'PGML500', 'Internal server error', (e as Error)?.message ?? String(e));
}
