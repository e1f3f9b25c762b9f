/**
 * Errors in configuration: each names where the bad value came from (the file and the path
 * in it, the environment variable, or the flag) and what was expected.
 */
import { RegscanError } from "../errors.js";

/** One problem in the configuration, with where it was found. */
export interface ConfigProblem {
  /** Where the value came from: `regscan.yaml`, `environment variable REGSCAN_RPS`, `flag --rps`. */
  source: string;
  /** The dotted path in the configuration, e.g. `registry.rps` or `repositories[2].name`. */
  path: string;
  /** What was wrong and what was expected. */
  message: string;
}

/** The configuration could not be read or does not validate. */
export class ConfigError extends RegscanError {
  readonly code = "INVALID_CONFIG";
  constructor(
    readonly problems: ConfigProblem[],
    options?: { cause?: unknown },
  ) {
    super(problems.map(formatProblem).join("\n"), options);
  }
}

function formatProblem(p: ConfigProblem): string {
  return p.path ? `${p.source}: at ${p.path}: ${p.message}` : `${p.source}: ${p.message}`;
}
