/**
 * The errors the credential sources throw. Each names the file, entry, helper or host
 * at fault and never carries the secret itself.
 */
import { RegscanError } from "../../errors.js";

/** What a `CredentialsFileError` says. */
export interface CredentialsFileErrorContext {
  /** The file (or other source) that was being read. */
  file: string;
  /** The entry at fault (a server key), when the problem is inside one entry. */
  entry?: string | undefined;
  reason: string;
  cause?: unknown;
}

/** A docker config / pull-secret file that cannot be read or parsed. */
export class CredentialsFileError extends RegscanError {
  readonly code = "INVALID_CREDENTIALS_FILE";
  /** The file (or other source) that was being read. */
  readonly file: string;
  /** The entry at fault (a server key), when the problem is inside one entry. */
  readonly entry: string | undefined;

  constructor(ctx: CredentialsFileErrorContext) {
    const { file, entry, reason } = ctx;
    super(
      `credentials file ${file}${entry === undefined ? "" : `, entry ${quoteEntry(entry)}`}: ${reason}`,
      causeOption(ctx),
    );
    this.file = file;
    this.entry = entry;
  }
}

/** A docker credential helper that is missing, timed out, or answered with an error. */
export class CredentialHelperError extends RegscanError {
  readonly code = "CREDENTIAL_HELPER_FAILED";
  /** The helper program, e.g. `docker-credential-pass`. */
  readonly helper: string;
  /** The registry host credentials were asked for. */
  readonly host: string;

  constructor(ctx: { helper: string; host: string; reason: string; cause?: unknown }) {
    super(`credential helper ${ctx.helper} for ${ctx.host}: ${ctx.reason}`, causeOption(ctx));
    this.helper = ctx.helper;
    this.host = ctx.host;
  }
}

/** A cloud provider (AWS ECR, Google, Azure) that could not produce a credential. */
export class CloudCredentialsError extends RegscanError {
  readonly code = "CLOUD_CREDENTIALS_FAILED";
  /** `aws-ecr`, `gcp` or `azure`. */
  readonly provider: string;
  /** The registry host (or AWS region) the credential was for. */
  readonly host: string;

  constructor(ctx: { provider: string; host: string; reason: string; cause?: unknown }) {
    super(`${ctx.provider} credentials for ${ctx.host}: ${ctx.reason}`, causeOption(ctx));
    this.provider = ctx.provider;
    this.host = ctx.host;
  }
}

/**
 * `{ cause }` only when the context has one: `Error` records a `cause` property even when
 * it is given `undefined`, and these errors had none before.
 */
function causeOption(ctx: { cause?: unknown }): { cause: unknown } | undefined {
  return "cause" in ctx ? { cause: ctx.cause } : undefined;
}

/** Server keys are not secret, but may be arbitrary bytes: quote and bound them. */
function quoteEntry(entry: string): string {
  const short = entry.length > 80 ? `${entry.slice(0, 80)}...` : entry;
  return JSON.stringify(short);
}

/** A short description of an unknown thrown value, for wrapping SDK errors. */
export function describeCause(err: unknown): string {
  if (err instanceof Error) {
    const text = `${err.name}: ${err.message}`;
    return text.length > 300 ? `${text.slice(0, 300)}...` : text;
  }
  return "unknown error";
}
