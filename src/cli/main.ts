/**
 * The `regscan` command line: builds the commander program from the command modules and
 * turns failures into a one-line message and exit status 1 (a stack trace only with --debug).
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { registerConfigCommand } from "./commands/config.js";
import { registerGetCommand } from "./commands/get.js";
import { registerInspectCommand } from "./commands/inspect.js";
import { registerScanCommand } from "./commands/scan.js";
import { registerServeCommand } from "./commands/serve.js";
import { registerTagsCommand } from "./commands/tags.js";
import type { CliContext } from "./context.js";

const VERSION = "0.1.0";

/** Builds the program; exported so that tests can run commands in-process. */
export function buildProgram(ctx: CliContext): Command {
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
  registerTagsCommand(program, ctx);
  registerInspectCommand(program, ctx);
  registerScanCommand(program, ctx);
  registerGetCommand(program, ctx);
  registerServeCommand(program, ctx);
  registerConfigCommand(program, ctx);
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
  const program = buildProgram(ctx);
  try {
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
    return ctx.exitCode > 1 ? ctx.exitCode : 1;
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
