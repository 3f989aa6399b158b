/**
 * Errors the HTTP layer maps to responses: EmbedInputError -> 400,
 * UnknownModelError -> 404, ModelLoadError -> 500/503.
 */
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
}

export class ModelLoadError extends EmbedError {
  constructor(
    readonly model: string,
    message: string,
  ) {
    super('model_load_failed', `could not load embedding model '${model}': ${message}`);
  }
}
