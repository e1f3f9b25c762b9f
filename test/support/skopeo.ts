/**
 * Runs `skopeo` against a harness registry, the independent reference that tests and benches
 * compare regscan's answers with: the right TLS, CA and credential flags for the registry's mode.
 */
import { execFile } from "node:child_process";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir, requireBinary } from "./processes.js";
import type { RegistryHandle } from "./registry.js";

export interface SkopeoOptions {
  /** Kills skopeo after this long (default 60 s). */
  timeoutMs?: number;
  /** Credentials instead of the registry's first user; null for none. */
  creds?: { username: string; password: string } | null;
}

const certDirs = new Map<string, string>();
let emptyAuthFile: string | undefined;

function authFile(): string {
  if (emptyAuthFile === undefined) {
    emptyAuthFile = join(makeTempDir("regscan-skopeo-auth-"), "auth.json");
    writeFileSync(emptyAuthFile, "{}");
  }
  return emptyAuthFile;
}

/** The flags that make skopeo trust and authenticate to `registry` (for list-tags / inspect). */
export function skopeoFlags(registry: RegistryHandle, opts: SkopeoOptions = {}): string[] {
  const flags: string[] = [];
  if (registry.caFile !== undefined) {
    let dir = certDirs.get(registry.caFile);
    if (dir === undefined) {
      dir = makeTempDir("regscan-skopeo-certs-");
      copyFileSync(registry.caFile, join(dir, "ca.crt"));
      certDirs.set(registry.caFile, dir);
    }
    flags.push("--cert-dir", dir);
  } else {
    flags.push("--tls-verify=false");
  }
  const first = Object.entries(registry.users)[0];
  const creds =
    opts.creds === null
      ? undefined
      : (opts.creds ?? (first ? { username: first[0], password: first[1] } : undefined));
  if (creds !== undefined) flags.push("--creds", `${creds.username}:${creds.password}`);
  // Each run must not pick up the machine's own auth files.
  flags.push("--authfile", authFile());
  return flags;
}

/**
 * Runs skopeo (asynchronously: the registry's proxy lives in this process) and resolves its
 * stdout; rejects with its stderr on failure.
 */
export function runSkopeo(args: string[], opts: SkopeoOptions = {}): Promise<Buffer> {
  const bin = requireBinary("skopeo", "skopeo");
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      args,
      { encoding: "buffer", timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err !== null) {
          reject(new Error(`skopeo ${args[0]} failed: ${stderr.toString("utf8").trim()}`));
          return;
        }
        resolve(stdout);
      },
    );
  });
}

/** `skopeo list-tags` of `repo` in the registry (tags in skopeo's order). */
export async function skopeoListTags(
  registry: RegistryHandle,
  repo: string,
  opts: SkopeoOptions = {},
): Promise<string[]> {
  const out = await runSkopeo(
    ["list-tags", ...skopeoFlags(registry, opts), `docker://${registry.host}/${repo}`],
    opts,
  );
  return (JSON.parse(out.toString("utf8")) as { Tags: string[] }).Tags;
}

/** `skopeo inspect --raw` of `repo:tag` or `repo@digest`: the manifest bytes. */
export function skopeoInspectRaw(
  registry: RegistryHandle,
  repoAndRef: string,
  opts: SkopeoOptions = {},
): Promise<Buffer> {
  return runSkopeo(
    ["inspect", "--raw", ...skopeoFlags(registry, opts), `docker://${registry.host}/${repoAndRef}`],
    opts,
  );
}
