import { ApiError, apiError } from '../../errors.ts';

/** A rejected ONNX upload: `message` says what is wrong, `details` carries the underlying cause, `hint` how to fix it. */
export class OnnxImportError extends Error {
  override name = 'OnnxImportError';
  constructor(message: string, readonly details?: string, readonly hint?: string) {
    super(message);
  }

  toApiError(): ApiError {
    return apiError(400, 'PGML400', this.message, this.details || null, this.hint || null);
  }

  toJSON(): { message: string; details?: string; hint?: string } {
    return { message: this.message, ...(this.details ? { details: this.details } : {}), ...(this.hint ? { hint: this.hint } : {}) };
  }
}
