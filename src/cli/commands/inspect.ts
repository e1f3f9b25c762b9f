/**
 * `regscan inspect IMAGE[:TAG|@DIGEST]`: the image behind a tag or digest — digest, image
 * ID, creation time, labels, platforms — as a readable summary or, with `--output json`,
 * one JSON document. Asks the registry directly (no cache).
 */
import type { Command } from "commander";
import { type ImageRef, parseImageRef } from "../../image/ref.js";
import { type CliContext, CliError } from "../context.js";
import {
  addRegistryOptions,
  factoryFromFlags,
  loadCredentials,
  type RegistryFlags,
} from "../options.js";
import { inspectJson, inspectText } from "../output.js";
import { asCliError, untilInterrupted } from "./tags.js";

/** Registers `regscan inspect`. */
export function registerInspectCommand(program: Command, ctx: CliContext): void {
  addRegistryOptions(
    program
      .command("inspect")
      .description("describe the image behind a tag or digest, asking the registry")
      .argument("<image>", "IMAGE[:TAG|@DIGEST], e.g. alpine:3.19 (default tag latest)"),
  ).action(async (image: string, flags: RegistryFlags) => {
    let ref: ImageRef;
    try {
      ref = parseImageRef(image);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    // As `docker pull`: no tag and no digest means `latest`.
    if (ref.tag === undefined && ref.digest === undefined) ref = ref.name.withTag("latest");
    const reference = ref.digest ?? ref.tag ?? "latest";
    const creds = await loadCredentials(flags, ctx.env);
    const factory = await factoryFromFlags(flags, ctx);
    try {
      const client = factory.clientFor(ref.name, creds);
      const entry = await untilInterrupted((signal) => client.manifest(reference, { signal }));
      if (flags.output === "json") {
        ctx.stdout.write(`${JSON.stringify(inspectJson(ref, entry), null, 2)}\n`);
      } else {
        ctx.stdout.write(inspectText(ref, entry));
      }
    } catch (error) {
      throw asCliError(error);
    } finally {
      await factory.close();
    }
  });
}
