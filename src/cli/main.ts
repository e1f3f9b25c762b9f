/**
 * The `regscan` command line: builds the commander program from the command modules and
 * turns failures into a one-line message and exit status 1 (a stack trace only with --debug).
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Help, type Option } from "commander";
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
    .exitOverride()
    .configureHelp({ optionDescription: describeOption })
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    });
  const registers = await Promise.all(commandsFor(argv).map((name) => COMMANDS[name]!()));
  for (const register of registers) register(program, ctx);
  for (const command of withSubcommands(program)) {
    const path = commandPath(command);
    // One line that says where the full usage is, not the whole help after every typo.
    command.configureOutput({
      outputError: (message, write) => write(usageError(message, path)),
    });
  }
  return program;
}

/** `command` and every command below it. */
function withSubcommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap((c) => withSubcommands(c as Command))];
}

/** `regscan config check` for the `check` command. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** commander's `error: unknown option '--x'` (maybe with a suggestion) as one line. */
function usageError(message: string, path: string): string {
  const text = message
    .trim()
    .replace(/^error: /, "")
    .replace(/\s*\n\s*/g, " ");
  return `regscan: ${text} (see "${path} --help")\n`;
}

/** commander's description of an option, without the `(default: [])` of repeatable ones. */
function describeOption(this: Help, option: Option): string {
  const empty = Array.isArray(option.defaultValue) && option.defaultValue.length === 0;
  const shown = empty ? Object.assign(Object.create(option), { defaultValue: undefined }) : option;
  return Help.prototype.optionDescription.call(this, shown);
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
