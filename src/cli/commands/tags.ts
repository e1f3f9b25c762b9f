/**
 * `regscan tags IMAGE`: every tag of a repository, one per line in the registry's order,
 * or `{"name", "tags"}` with `--output json`. Asks the registry directly (no cache).
 */
import type { Command } from "commander";
import { RegscanError } from "../../errors.js";
import { type ImageName, parseImageName } from "../../image/ref.js";
import { type CliContext, CliError } from "../context.js";
import {
  addRegistryOptions,
  factoryFromFlags,
  loadCredentials,
  type RegistryFlags,
} from "../options.js";

/** Registers `regscan tags`. */
export function registerTagsCommand(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command("tags")
      .description("list every tag of a repository, asking the registry")
      .argument("<image>", "repository, e.g. alpine or ghcr.io/org/app"),
    // A tag list is the same for every platform.
    { platform: false },
  ).action(async (image: string, flags: RegistryFlags) => {
    let name: ImageName;
    try {
      name = parseImageName(image);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    const creds = await loadCredentials(flags, ctx.env);
    const factory = await factoryFromFlags(flags, ctx);
    try {
      const tags = await untilInterrupted((signal) =>
        factory.clientFor(name, creds).tags({ signal }),
      );
      if (flags.output === "json") {
        ctx.stdout.write(`${JSON.stringify({ name: name.toString(), tags }, null, 2)}\n`);
      } else if (tags.length > 0) {
        ctx.stdout.write(`${tags.join("\n")}\n`);
      }
    } catch (error) {
      throw asCliError(error);
    } finally {
      await factory.close();
    }
  });
}

/** Registry errors become one line; anything else (a bug) keeps its stack for --debug. */
export function asCliError(error: unknown): unknown {
  // A CliError (Ctrl-C's, exit status 130) is one already.
  if (error instanceof CliError) return error;
  if (error instanceof RegscanError) return new CliError(error.message);
  return error;
}

/** Runs `work` with a signal that Ctrl-C aborts, so that requests stop at once. */
export async function untilInterrupted<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onInterrupt = () => controller.abort(new CliError("interrupted", 130));
  process.once("SIGINT", onInterrupt);
  try {
    return await work(controller.signal);
  } finally {
    process.removeListener("SIGINT", onInterrupt);
  }
}
