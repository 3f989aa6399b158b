/** A rejected ONNX upload: `message` says what is wrong, `details` carries the underlying cause, `hint` how to fix it. */
export class OnnxImportError extends Error {
  override name = 'OnnxImportError';
  constructor(message: string, readonly details?: string, readonly hint?: string) {
    super(message);
  }

  toJSON(): { message: string; details?: string; hint?: string } {
    return { message: this.message, ...(this.details ? { details: this.details } : {}), ...(this.hint ? { hint: this.hint } : {}) };
  }
}
