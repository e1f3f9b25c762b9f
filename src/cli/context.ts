/**
 * What every command gets: where to write, the environment, and a way to say how the
 * process should exit. Commands write through this so that tests can run them in-process.
 */
import type { Writable } from "node:stream";
import { RegscanError } from "../errors.js";

export interface CliContext {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  /** Set by a command to make the process exit with this status (0 by default). */
  exitCode: number;
}

/** A failure the user caused or can fix: printed as one line, exit status `exitCode`. */
export class CliError extends RegscanError {
  readonly code = "CLI_ERROR";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
