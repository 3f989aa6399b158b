/**
 * Errors the HTTP layer maps to responses: EmbedInputError -> 400,
 * UnknownModelError -> 404, ModelLoadError -> 500/503.
 */
import { ApiError, apiError } from '../errors.ts';

export class EmbedError extends Error {
  constructor(
    readonly code: 'invalid_input' | 'unknown_model' | 'model_load_failed',
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class EmbedInputError extends EmbedError {
  constructor(message: string) {
    super('invalid_input', message);
  }

  toApiError(): ApiError {
    return apiError(400, 'PGML400', this.message);
  }
}

export class UnknownModelError extends EmbedError {
  constructor(
    readonly model: string,
    readonly available: string[],
    hint = '',
  ) {
    super(
      'unknown_model',
      `unknown embedding model '${model}'; available: ${available.length ? available.join(', ') : '(none)'}${hint ? `. ${hint}` : ''}`,
    );
  }

  toApiError(): ApiError {
    return apiError(404, 'PGML404', this.message, null, this.available.length ? `Available models: ${this.available.join(', ')}` : 'No models in PGML_MODEL_DIR; create one with npm run make-model');
  }
}

export class ModelLoadError extends EmbedError {
  constructor(
    readonly model: string,
    message: string,
  ) {
    super('model_load_failed', `could not load embedding model '${model}': ${message}`);
  }

  toApiError(): ApiError {
    return apiError(500, 'PGML500', this.message, null, 'Check the model directory layout (config.json, tokenizer.json, onnx/model.onnx)');
  }
}
