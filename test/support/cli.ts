/**
 * Runs the `regscan` CLI for tests: as a child process, as a user runs it (one smoke test per
 * command), or in this process through `main(argv, ctx)`, the same program without a second of
 * start-up per run. The process is the installed entry point, bin/regscan.mjs on the built
 * dist/ (0.4 s of CPU to start, against 1-1.5 s for the source through tsx), rebuilt first
 * when a source file is newer than it (`ensureDist`).
 */
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { main } from "../../src/cli/main.js";
import { ensureDist } from "./built-dist.js";
import { runCommand } from "./run-command.js";

const BIN = fileURLToPath(new URL("../../bin/regscan.mjs", import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Kills the process after this long (default 120 s). */
  timeoutMs?: number;
  cwd?: string;
}

/** Runs `regscan ...args` to completion. */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  const cli = cliCommand(args);
  return runCommand(cli.command, cli.args, {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    input: opts.input ?? "",
    timeoutMs: opts.timeoutMs,
  });
}

/** The command line to start the built CLI, for tests that manage the process. */
export function cliCommand(args: string[]): { command: string; args: string[] } {
  ensureDist();
  return { command: process.execPath, args: [BIN, ...args] };
}

/** Options of an in-process run. */
export interface InProcessOptions {
  /** Merged over `process.env`, as the child process's environment is. */
  env?: NodeJS.ProcessEnv;
  /** Makes stderr claim to be a terminal of this many columns (for the progress bar). */
  stderrTty?: { columns: number };
}

/** A run of `main` in this process that the test can signal and wait for. */
export interface InProcessRun {
  /** Resolves when `main` returns. */
  readonly done: Promise<CliResult>;
  /** What the run has written to stdout and stderr so far, in order. */
  output(): string;
  stdout(): string;
  /**
   * Delivers `signal` to the handlers the run installed, as the process's own signal would
   * (only those added since the run started, never the test process's other handlers).
   */
  signal(signal: "SIGINT" | "SIGTERM"): void;
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

type SignalListener = (signal: NodeJS.Signals) => void;

function signalListeners(): Map<string, Set<SignalListener>> {
  return new Map(
    SIGNALS.map((s) => [s, new Set(process.listeners(s) as SignalListener[])] as const),
  );
}

/**
 * Starts `regscan ...args` in this process through `main`, with its own output streams.
 * Handlers a signal delivered through `signal()` leaves behind (`serve` arms "a second
 * signal means now") are removed when the run ends, so they cannot fire later in the file.
 */
export function startCliInProcess(args: string[], opts: InProcessOptions = {}): InProcessRun {
  let stdout = "";
  let stderr = "";
  let all = "";
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _enc, done) {
        const text = String(chunk);
        append(text);
        all += text;
        done();
      },
    });
  const out = sink((s) => {
    stdout += s;
  });
  const errSink = sink((s) => {
    stderr += s;
  });
  const err = opts.stderrTty
    ? Object.assign(errSink, { isTTY: true, columns: opts.stderrTty.columns })
    : errSink;
  const before = signalListeners();
  let signalled: Map<string, Set<SignalListener>> | undefined;
  const done = main(["node", "regscan", ...args], {
    stdout: out,
    stderr: err,
    env: { ...process.env, ...opts.env },
    exitCode: 0,
  }).then((code): CliResult => {
    if (signalled) {
      for (const s of SIGNALS) {
        for (const l of process.listeners(s) as SignalListener[]) {
          if (!signalled.get(s)?.has(l)) process.off(s, l);
        }
      }
    }
    return { code, signal: null, stdout, stderr };
  });
  return {
    done,
    output: () => all,
    stdout: () => stdout,
    signal(signal) {
      const added = (process.listeners(signal) as SignalListener[]).filter(
        (l) => !before.get(signal)?.has(l),
      );
      if (added.length === 0) throw new Error(`the run has no ${signal} handler`);
      signalled = signalListeners();
      for (const l of added) l(signal);
    },
  };
}

/** Runs `regscan ...args` to completion in this process (see {@link startCliInProcess}). */
export function runCliInProcess(args: string[], opts: InProcessOptions = {}): Promise<CliResult> {
  return startCliInProcess(args, opts).done;
}
