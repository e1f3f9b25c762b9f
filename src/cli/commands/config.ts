/**
 * `regscan config check FILE`: validates a configuration file (with the `REGSCAN_*`
 * environment applied) and prints the effective configuration, secrets masked.
 */
import type { Command } from "commander";
import { ConfigError } from "../../config/errors.js";
import { loadConfig } from "../../config/load.js";
import { formatConfig } from "../../config/mask.js";
import { type CliContext, CliError } from "../context.js";

/** Registers `regscan config check FILE`. */
export function registerConfigCommand(program: Command, ctx: CliContext): void {
  const config = program.command("config").description("work with regscan configuration files");
  config
    .command("check")
    .description("validate FILE and print the effective configuration (secrets masked)")
    .argument("<file>", "YAML configuration file")
    .action(async (file: string) => {
      try {
        const loaded = await loadConfig({ file, env: ctx.env });
        ctx.stdout.write(
          `# effective configuration of ${file} (with REGSCAN_* environment variables applied)\n`,
        );
        ctx.stdout.write(formatConfig(loaded.config));
      } catch (err) {
        if (err instanceof ConfigError)
          throw new CliError(`invalid configuration:\n${err.message}`);
        throw err;
      }
    });
}
