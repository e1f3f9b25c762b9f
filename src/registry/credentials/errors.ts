/**
 * The errors the credential sources throw. Each names the file, entry, helper or host
 * at fault and never carries the secret itself.
 */
import { RegscanError } from "../../errors.js";

/** A docker config / pull-secret file that cannot be read or parsed. */
export class CredentialsFileError extends RegscanError {
  readonly code = "INVALID_CREDENTIALS_FILE";
  constructor(
    /** The file (or other source) that was being read. */
    readonly file: string,
    /** The entry at fault (a server key), when the problem is inside one entry. */
    readonly entry: string | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `credentials file ${file}${entry === undefined ? "" : `, entry ${quoteEntry(entry)}`}: ${reason}`,
      options,
    );
  }
}

/** A docker credential helper that is missing, timed out, or answered with an error. */
export class CredentialHelperError extends RegscanError {
  readonly code = "CREDENTIAL_HELPER_FAILED";
  constructor(
    /** The helper program, e.g. `docker-credential-pass`. */
    readonly helper: string,
    /** The registry host credentials were asked for. */
    readonly host: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`credential helper ${helper} for ${host}: ${reason}`, options);
  }
}

/** A cloud provider (AWS ECR, Google, Azure) that could not produce a credential. */
export class CloudCredentialsError extends RegscanError {
  readonly code = "CLOUD_CREDENTIALS_FAILED";
  constructor(
    /** `aws-ecr`, `gcp` or `azure`. */
    readonly provider: string,
    /** The registry host (or AWS region) the credential was for. */
    readonly host: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${provider} credentials for ${host}: ${reason}`, options);
  }
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
