/**
 * Helpers of the package tests: run a command to completion with a deadline, and run the
 * entry-load child (which heavy packages an import of a regscan entry point loads).
 */
import { fileURLToPath } from "node:url";
import { runCommand } from "../support/run-command.js";

const CHILD = fileURLToPath(new URL("./fixtures/entry-load-child.mjs", import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command args` in `cwd`, killed after `timeoutMs`; never rejects on a status. */
export function run(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return runCommand(command, args, opts);
}

/** What the entry-load child reports. */
export interface EntryLoad {
  /** Heavy packages loaded by the import alone. */
  afterImport: string[];
  /** Heavy packages loaded once a SQLite store, a Cache and metrics were used. */
  afterUse: string[];
  importMs: number;
  /** Modules the resolve hook saw (a sanity check that it ran). */
  seen: number;
  /** Names the entry exports. */
  exports: number;
}

/** The child and its resolve hook, to copy into a project that imports regscan by name. */
export const ENTRY_LOAD_FILES = [
  CHILD,
  CHILD.replace(/entry-load-child\.mjs$/, "module-log-hook.mjs"),
];

/**
 * Imports `entry` (a path, or a package name resolved from `child`'s directory) in a fresh
 * `node ...nodeArgs` process in `cwd`.
 */
export async function loadEntry(
  entry: string,
  opts: { use?: boolean; nodeArgs?: string[]; cwd?: string; child?: string } = {},
): Promise<EntryLoad> {
  const args = [...(opts.nodeArgs ?? []), opts.child ?? CHILD, entry];
  if (opts.use) args.push("use");
  const runOpts: { cwd?: string; timeoutMs: number } = { timeoutMs: 60_000 };
  if (opts.cwd !== undefined) runOpts.cwd = opts.cwd;
  const r = await run(process.execPath, args, runOpts);
  if (r.code !== 0) throw new Error(`entry-load child exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as EntryLoad;
}
