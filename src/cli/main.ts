/**
 * The `regscan` command line: builds the commander program from the command modules and
 * turns failures into a one-line message and exit status 1 (a stack trace only with --debug).
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { endQuietlyOnClosedPipe } from "./closed-output.js";
import type { CliContext } from "./context.js";

type Register = (program: Command, ctx: CliContext) => void;

/**
 * Each command's module, loaded only when needed: a run of `regscan tags` need not load the
 * daemon, the stores and the Kubernetes client, which makes start-up several times faster.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  tags: async () => (await import("./commands/tags.js")).registerTagsCommand,
  inspect: async () => (await import("./commands/inspect.js")).registerInspectCommand,
  scan: async () => (await import("./commands/scan.js")).registerScanCommand,
  get: async () => (await import("./commands/get.js")).registerGetCommand,
  serve: async () => (await import("./commands/serve.js")).registerServeCommand,
  config: async () => (await import("./commands/config.js")).registerConfigCommand,
};

/** The commands to load for `argv`: the one named, or all of them for help and usage errors. */
function commandsFor(argv: string[]): string[] {
  const args = argv.slice(2);
  const named = args.find((arg) => !arg.startsWith("-"));
  if (named !== undefined && named in COMMANDS) return [named];
  if (named === undefined && (args.includes("--version") || args.includes("-V"))) return [];
  return Object.keys(COMMANDS);
}

const VERSION = "0.1.0";

/**
 * Builds the program with the commands `argv` needs (all of them by default); exported so
 * that tests can run commands in-process.
 */
export async function buildProgram(
  ctx: CliContext,
  argv: string[] = ["node", "regscan"],
): Promise<Command> {
  const program = new Command("regscan")
    .description("Always-fresh container image metadata from any OCI / Docker registry")
    .version(VERSION)
    .option("--debug", "print stack traces of failures")
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    });
  const registers = await Promise.all(commandsFor(argv).map((name) => COMMANDS[name]!()));
  for (const register of registers) register(program, ctx);
  return program;
}

/** Runs the CLI with `argv` (as in `process.argv`) and resolves to the exit status. */
export async function main(
  argv: string[],
  ctx: CliContext = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    exitCode: 0,
  },
): Promise<number> {
  endQuietlyOnClosedPipe(ctx.stdout);
  endQuietlyOnClosedPipe(ctx.stderr);
  try {
    const program = await buildProgram(ctx, argv);
    await program.parseAsync(argv);
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed its message (help, version, usage errors).
      return err.exitCode;
    }
    const debug = argv.includes("--debug");
    const message = err instanceof Error ? err.message : String(err);
    ctx.stderr.write(`regscan: ${message}\n`);
    if (debug && err instanceof Error && err.stack) ctx.stderr.write(`${err.stack}\n`);
    return Math.max(ctx.exitCode, 1);
  }
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
