/**
 * The root of every error regscan throws. Each subclass has a stable `code` that callers
 * can switch on; messages name the input that was wrong and never carry a secret.
 */
export abstract class RegscanError extends Error {
  /** A stable, machine-readable code, e.g. `INVALID_IMAGE_REF` or `MANIFEST_UNKNOWN`. */
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
