/**
 * Options shared by the commands that talk to a registry directly (`tags`, `inspect`):
 * platform, insecure hosts, docker config, trace, output; and the factory and credentials
 * they make from them. The registry client and credentials are imported only when a command
 * runs, so that `--help` and usage errors answer without loading the HTTP stack.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { parseDuration } from "../config/duration.js";
import type { Platform } from "../image/info.js";
import type { Credentials } from "../registry/credentials/credentials.js";
import type { RemoteClientFactory } from "../registry/factory.js";
import { parsePlatform } from "../registry/manifest/platform.js";
import { type CliContext, CliError } from "./context.js";
import type { OutputFormat } from "./output.js";

/** The flags `addRegistryOptions` adds, as commander hands them over. */
export interface RegistryFlags {
  platform?: Platform;
  insecureHost: string[];
  dockerConfig?: string;
  trace?: boolean;
  /** `--request-timeout`, in milliseconds. */
  requestTimeout?: number;
  output: OutputFormat;
}

/** Which of the shared options a command takes. */
export interface RegistryOptionChoice {
  /** `--platform`; false for commands that never describe an image (`tags`). Default true. */
  platform?: boolean;
}

/**
 * Adds `--platform`, `--insecure-host`, `--docker-config`, `--trace` and `--output`. A command
 * that would ignore `--platform` does not take it, so that passing it is an unknown option
 * rather than a flag silently doing nothing.
 */
export function addRegistryOptions(cmd: Command, choice: RegistryOptionChoice = {}): Command {
  if (choice.platform ?? true) {
    cmd.option(
      "--platform <os/arch[/variant]>",
      "platform to describe when a tag is multi-platform (default linux/amd64)",
      platformOption,
    );
  }
  return cmd
    .option(
      "--insecure-host <host>",
      "host allowed to use plain HTTP or unverified TLS (repeatable)",
      collect,
      [],
    )
    .option(
      "--docker-config <path>",
      "docker config.json with credentials (default $DOCKER_CONFIG/config.json, then ~/.docker/config.json)",
    )
    .option("--trace", "log every HTTP request (method, URL, status, duration) to stderr")
    .option(
      "--request-timeout <duration>",
      "total deadline of one registry request, headers and body (default 60s)",
      requestTimeoutOption,
    )
    .option("-o, --output <format>", "text or json", parseOutputFormat, "text");
}

function platformOption(value: string): Platform {
  try {
    return parsePlatform(value);
  } catch (error) {
    throw new CliError(`--platform: ${(error as Error).message}`);
  }
}

function requestTimeoutOption(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 100) {
    throw new CliError(`--request-timeout: expected a duration of at least 100ms, such as "30s"`);
  }
  return ms;
}

/** Parses `--output`. */
export function parseOutputFormat(value: string): OutputFormat {
  if (value !== "text" && value !== "json") {
    throw new CliError(`--output must be "text" or "json", not ${JSON.stringify(value)}`);
  }
  return value;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Where docker keeps its config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_CONFIG
    ? join(env.DOCKER_CONFIG, "config.json")
    : join(env.HOME ?? homedir(), ".docker", "config.json");
}

/**
 * The credentials of `--docker-config`, or of the default file. A file the user named must
 * be readable; without the default file, only the cloud providers (ECR, GCR, ACR) are asked,
 * as the credentials precedence says, and every other host is anonymous.
 */
export async function loadCredentials(
  flags: RegistryFlags,
  env: NodeJS.ProcessEnv,
): Promise<Credentials> {
  const path = flags.dockerConfig ?? defaultDockerConfigPath(env);
  const [{ readDockerConfigFile }, { Credentials }, { sharedCloudProviders }] = await Promise.all([
    import("../registry/credentials/image-creds.js"),
    import("../registry/credentials/credentials.js"),
    import("../registry/credentials/cloud-providers.js"),
  ]);
  try {
    return await readDockerConfigFile(path);
  } catch (error) {
    if (flags.dockerConfig === undefined && causeCode(error) === "ENOENT")
      return Credentials.fromCloud(sharedCloudProviders());
    throw new CliError((error as Error).message);
  }
}

function causeCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === "string" ? cause.code : undefined;
}

/** A factory for one command run; the caller closes it. */
export async function factoryFromFlags(
  flags: RegistryFlags,
  ctx: CliContext,
): Promise<RemoteClientFactory> {
  const [{ RemoteClientFactory }, { cliLogger }] = await Promise.all([
    import("../registry/factory.js"),
    import("./logger.js"),
  ]);
  return new RemoteClientFactory({
    logger: cliLogger(ctx, flags.trace ? "info" : "warn"),
    trace: flags.trace ?? false,
    insecureHosts: flags.insecureHost,
    env: ctx.env,
    platform: flags.platform,
    requestTimeoutMs: flags.requestTimeout,
  });
}
