/**
 * `regscan config check [FILE] [flags]`: validates a configuration file with the `REGSCAN_*`
 * environment and any `serve` flags applied, and prints the effective configuration with
 * secrets masked: what `regscan serve` would run with.
 */
import type { Command } from "commander";
import { addConfigOptions } from "../../config/cli-options.js";
import { ConfigError } from "../../config/errors.js";
import { loadConfig } from "../../config/load.js";
import { formatConfig } from "../../config/mask.js";
import { describeWebhooks } from "../../server/webhooks/config.js";
import { type CliContext, CliError } from "../context.js";

/** Registers `regscan config check [FILE]`, which takes every flag `regscan serve` takes. */
export function registerConfigCommand(program: Command, ctx: CliContext): void {
  const config = program.command("config").description("work with regscan configuration files");
  const check = config
    .command("check")
    .description(
      "validate FILE and print the effective configuration (environment and flags applied, secrets masked)",
    )
    .argument("[file]", "YAML configuration file (or --config FILE)");
  addConfigOptions(check);
  check.action(async (fileArg: string | undefined, opts: Record<string, unknown>) => {
    const file = fileArg ?? (typeof opts.config === "string" ? opts.config : undefined);
    try {
      const loaded = await loadConfig({ file, env: ctx.env, flags: opts });
      ctx.stdout.write(
        `# effective configuration${file ? ` of ${file}` : ""} (REGSCAN_* environment variables and flags applied)\n`,
      );
      ctx.stdout.write(formatConfig(loaded.config));
      // Where each receiver's secret is read and how it is checked; never the secret.
      const hooks = loaded.config.webhooks ? describeWebhooks(loaded.config.webhooks) : [];
      ctx.stdout.write(
        hooks.length === 0
          ? "# webhook receivers: none\n"
          : `# webhook receivers on (POST /v1/webhooks/KIND):\n${hooks.map((h) => `#   ${h}\n`).join("")}`,
      );
    } catch (err) {
      if (err instanceof ConfigError) throw new CliError(`invalid configuration:\n${err.message}`);
      throw err;
    }
  });
}
