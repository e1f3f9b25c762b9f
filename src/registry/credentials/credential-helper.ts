/**
 * Asks docker credential helpers (`docker-credential-<name> get`) for a registry's
 * credentials, as the docker CLI does: the server URL goes in on stdin, the answer comes
 * back as `{"ServerURL","Username","Secret"}`. Answers are cached briefly and concurrent
 * asks for the same host share one helper run.
 */
import {
  type ExecFileException,
  type ExecFileOptionsWithStringEncoding,
  execFile,
} from "node:child_process";
import type { OperationOptions } from "../../abort.js";
import { SharedLoads } from "../shared-loads.js";
import { CredentialHelperError } from "./errors.js";
import { StoredHostCredential } from "./host-credential.js";
import { helperServerUrl } from "./server-key.js";

/** Tuning for credential helper runs. */
export interface CredentialHelperOptions {
  /** How long a helper may take before it is killed (default 10 s). */
  timeoutMs?: number;
  /** How long an answer (including "no credentials") is reused (default 60 s; 0: never). */
  cacheTtlMs?: number;
  /** The helper's environment, and the `PATH` it is found on (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: () => number;
}

interface CachedAnswer {
  value: StoredHostCredential | undefined;
  expiresAt: number;
}

const MAX_OUTPUT = 1024 * 1024;
// The docker-credential-helpers message for "nothing stored for this server".
const NOT_FOUND = /credentials not found/i;

/** Runs credential helpers and caches their answers. */
export class CredentialHelperRunner {
  readonly #timeoutMs: number;
  readonly #ttlMs: number;
  readonly #env: NodeJS.ProcessEnv | undefined;
  readonly #clock: () => number;
  readonly #cache = new Map<string, CachedAnswer>();
  readonly #running = new SharedLoads<string, StoredHostCredential | undefined>();

  constructor(opts: CredentialHelperOptions = {}) {
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#ttlMs = opts.cacheTtlMs ?? 60_000;
    this.#env = opts.env;
    this.#clock = opts.clock ?? Date.now;
  }

  /**
   * The credential helper `name` holds for `host`, or `undefined` when it holds none.
   * Throws `CredentialHelperError` when the helper is missing, fails or times out.
   */
  async get(
    ask: { name: string; host: string },
    opts: OperationOptions = {},
  ): Promise<StoredHostCredential | undefined> {
    const { name, host } = ask;
    const key = `${name}\n${host}`;
    const cached = this.#cache.get(key);
    if (cached && cached.expiresAt > this.#clock()) return cached.value;
    const value = await this.#running.run(
      key,
      (signal) => runHelper({ name, host, timeoutMs: this.#timeoutMs, env: this.#env, signal }),
      opts.signal,
    );
    if (this.#ttlMs > 0) this.#cache.set(key, { value, expiresAt: this.#clock() + this.#ttlMs });
    return value;
  }

  /** Forgets every cached answer. */
  clear(): void {
    this.#cache.clear();
  }
}

/** One run of `docker-credential-<name> get` for a host. */
interface HelperRun {
  name: string;
  host: string;
  timeoutMs: number;
  /** The helper's environment; default: this process's. */
  env: NodeJS.ProcessEnv | undefined;
  signal: AbortSignal | undefined;
}

function runHelper(run: HelperRun): Promise<StoredHostCredential | undefined> {
  const { name, host, timeoutMs, env, signal } = run;
  const program = `docker-credential-${name}`;
  const options: ExecFileOptionsWithStringEncoding = {
    env: env ?? process.env,
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: MAX_OUTPUT,
    windowsHide: true,
    encoding: "utf8",
  };
  if (signal) options.signal = signal;
  return new Promise<StoredHostCredential | undefined>((resolve, reject) => {
    const child = execFile(program, ["get"], options, (err, stdout, stderr) => {
      if (err) {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const failure = helperFailure({ program, host, timeoutMs, err, stdout, stderr });
        if (failure) reject(failure);
        else resolve(undefined);
        return;
      }
      try {
        resolve(parseAnswer({ program, host, stdout }));
      } catch (e) {
        reject(e);
      }
    });
    // A helper that exits without reading stdin makes the write fail; its exit says why.
    child.stdin?.on("error", () => {});
    child.stdin?.end(helperServerUrl(host));
  });
}

/** The error for a failed run, or `undefined` when the helper just has nothing for the host. */
function helperFailure(failed: {
  program: string;
  host: string;
  timeoutMs: number;
  err: ExecFileException;
  stdout: string;
  stderr: string;
}): CredentialHelperError | undefined {
  const { program, host, timeoutMs, err, stdout, stderr } = failed;
  if (err.code === "ENOENT") {
    return new CredentialHelperError({
      helper: program,
      host,
      reason: `${program} not found on PATH`,
    });
  }
  if (err.code === "EACCES") {
    return new CredentialHelperError({
      helper: program,
      host,
      reason: `${program} is not executable`,
    });
  }
  if (err.killed || err.signal) {
    return new CredentialHelperError({
      helper: program,
      host,
      reason: `no answer within ${timeoutMs} ms`,
    });
  }
  if (err.code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER") {
    return new CredentialHelperError({ helper: program, host, reason: "answer too large" });
  }
  const said = `${stdout}\n${stderr}`;
  if (NOT_FOUND.test(said)) return undefined;
  return new CredentialHelperError({
    helper: program,
    host,
    reason: `exited with status ${String(err.code)}${safeExcerpt(stderr.trim() || stdout.trim())}`,
  });
}

/**
 * The first line of what a failing helper printed, short, and only when it does not look
 * like a JSON answer (which would carry the secret).
 */
function safeExcerpt(text: string): string {
  const line = (text.split("\n", 1)[0] ?? "").trim();
  if (line === "" || line.startsWith("{") || line.includes("Secret")) return "";
  return `: ${line.length > 120 ? `${line.slice(0, 120)}...` : line}`;
}

function parseAnswer(answer: {
  program: string;
  host: string;
  stdout: string;
}): StoredHostCredential | undefined {
  const { program, host, stdout } = answer;
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new CredentialHelperError({ helper: program, host, reason: "answer is not JSON" });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new CredentialHelperError({
      helper: program,
      host,
      reason: "answer is not a JSON object",
    });
  }
  const { Username: username, Secret: secret } = doc as Record<string, unknown>;
  if (typeof username !== "string" || typeof secret !== "string") {
    throw new CredentialHelperError({
      helper: program,
      host,
      reason: "answer lacks Username or Secret",
    });
  }
  if (secret === "") return undefined;
  const provenance = `credential-helper:${program}`;
  if (username === "<token>") {
    return new StoredHostCredential({ host, identityToken: secret, provenance });
  }
  return new StoredHostCredential({ host, username, password: secret, provenance });
}
