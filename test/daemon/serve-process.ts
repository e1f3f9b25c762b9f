/**
 * Runs a real `regscan serve` process for end-to-end tests: the built CLI (bin/regscan.mjs on
 * dist/, test/support/cli.ts), its address read from its first line, stopped with a signal,
 * killed when the tests end whatever happens.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cliCommand } from "../support/cli.js";
import { onCleanup, waitFor } from "../support/processes.js";

/** A running `regscan serve`. */
export interface ServeProcess {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly child: ChildProcess;
  output(): string;
  /** Sends `signal` and resolves with how it exited and how long that took. */
  stop(
    signal?: NodeJS.Signals,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** GET/POST with the API's JSON parsed. */
  fetchJson(
    path: string,
    init?: RequestInit,
  ): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }>;
}

/**
 * The command line of a test's `regscan serve`: a free loopback port (a `--listen` in `args`
 * overrides it) and pretty logs, whose first line `serveUrl` reads the address from.
 */
export function serveArgs(args: string[]): string[] {
  return ["serve", "--listen", "127.0.0.1:0", "--log-format", "pretty", ...args];
}

/** Starts `regscan serve ...args` listening on a free loopback port. */
export async function startServe(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ServeProcess> {
  const { command, args: argv } = cliCommand(serveArgs(args));
  const child = spawn(command, argv, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  onCleanup(async () => {
    if (!exit) {
      child.kill("SIGKILL");
      await exited;
    }
  });
  const url = await serveUrl(
    () => out,
    () => (exit ? `it exited: ${out}` : undefined),
  );
  return {
    url,
    child,
    output: () => out,
    async stop(signal = "SIGTERM") {
      const started = Date.now();
      if (!exit) child.kill(signal);
      const result = await exited;
      return { ...result, ms: Date.now() - started };
    },
    fetchJson: (path, init) => fetchJson(url, path, init),
  };
}

/**
 * The address `regscan serve` prints once it listens, read from `output()`; `ended()` gives a
 * reason to stop waiting (the server is gone) or undefined.
 */
export async function serveUrl(
  output: () => string,
  ended: () => string | undefined,
): Promise<string> {
  let url = "";
  await waitFor(
    async () => {
      const m = /regscan serving on (http:\/\/\S+)/.exec(output());
      if (m?.[1]) url = m[1];
      return url !== "";
    },
    { what: "regscan serve to listen", timeoutMs: 30_000, giveUp: ended },
  );
  return url;
}

/** `url + path` fetched with a 10 s deadline, the body parsed as JSON (`{ text }` when it is not). */
export async function fetchJson(
  url: string,
  path: string,
  init?: RequestInit,
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, headers: res.headers, body };
}
