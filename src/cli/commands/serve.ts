/**
 * `regscan serve`: runs the daemon (warmer + HTTP API) until SIGTERM or SIGINT, then shuts
 * down gracefully and exits 0. Every setting comes from `--config FILE`, `REGSCAN_*`
 * environment variables and flags (flags win).
 */
import type { Command } from "commander";
import { addConfigOptions } from "../../config/cli-options.js";
import { ConfigError } from "../../config/errors.js";
import { loadConfig } from "../../config/load.js";
import { maskedConfig } from "../../config/mask.js";
import { Daemon } from "../../daemon/daemon.js";
import { createLogger } from "../../daemon/logger.js";
import { RegscanError } from "../../errors.js";
import { type CliContext, CliError } from "../context.js";

/** Registers `regscan serve` with every configuration flag. */
export function registerServeCommand(program: Command, ctx: CliContext): void {
  const serve = program
    .command("serve")
    .description("keep the cache warm for the configured images and serve the HTTP API");
  addConfigOptions(serve);
  serve.action(async (opts: Record<string, unknown>) => {
    const file = typeof opts.config === "string" ? opts.config : undefined;
    let loaded: Awaited<ReturnType<typeof loadConfig>>;
    try {
      loaded = await loadConfig({ file, env: ctx.env, flags: opts });
    } catch (err) {
      if (err instanceof ConfigError) throw new CliError(`invalid configuration:\n${err.message}`);
      throw err;
    }
    const { config } = loaded;
    const logger = createLogger({
      level: config.log.level,
      format: config.log.format,
      stream: ctx.stderr,
    });
    logger.debug({ config: maskedConfig(config), file }, "effective configuration");
    const onRejection = (reason: unknown) => {
      // One failing piece of work must not take the daemon down with it.
      logger.error(
        { err: { message: reason instanceof Error ? reason.message : String(reason) } },
        "unhandled rejection",
      );
    };
    process.on("unhandledRejection", onRejection);

    let daemon: Daemon;
    try {
      daemon = await Daemon.start({ config, logger, env: ctx.env });
    } catch (err) {
      process.off("unhandledRejection", onRejection);
      if (err instanceof RegscanError) throw new CliError(err.message);
      throw err;
    }
    const where = `http://${daemon.address.family === "IPv6" ? `[${daemon.address.address}]` : daemon.address.address}:${daemon.address.port}`;
    ctx.stdout.write(`regscan serving on ${where}\n`);

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const handler = (sig: NodeJS.Signals) => {
        process.off("SIGTERM", handler);
        process.off("SIGINT", handler);
        // A second signal while stopping means "now".
        process.once("SIGTERM", () => process.exit(1));
        process.once("SIGINT", () => process.exit(130));
        resolve(sig);
      };
      process.on("SIGTERM", handler);
      process.on("SIGINT", handler);
    });
    logger.info({ signal }, "signal received");
    const clean = await daemon.stop();
    process.off("unhandledRejection", onRejection);
    ctx.stdout.write(`regscan stopped${clean ? "" : " (shutdown bound reached)"}\n`);
    ctx.exitCode = 0;
    if (ctx.stdout === process.stdout) {
      // Some client libraries keep sockets open after close; do not hang past the shutdown.
      setTimeout(() => process.exit(0), 1_000).unref();
    }
  });
}
