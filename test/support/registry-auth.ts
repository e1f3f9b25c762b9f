/**
 * Raw-HTTP access to a harness registry the way a plain client would authenticate, for tests
 * that read back what they pushed or check what regscan read, and a docker config.json that
 * holds the registry's credentials for CLI tests.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "./processes.js";
import type { RegistryHandle } from "./registry.js";

/** `Basic base64(user:pass)`. */
export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

/**
 * A token from the registry's token server for `scope` (default `repository:REPO:pull`),
 * as the registry's first user (or `creds`; null for anonymous).
 */
export async function fetchToken(
  registry: RegistryHandle,
  scopes: string[],
  creds?: { username: string; password: string } | null,
): Promise<string> {
  const ts = registry.tokenServer;
  if (ts === undefined) throw new Error("fetchToken needs a registry in token mode");
  const url = new URL(ts.realm);
  url.searchParams.set("service", registry.service ?? "");
  for (const s of scopes) url.searchParams.append("scope", s);
  const first = Object.entries(registry.users)[0];
  const who =
    creds === null
      ? undefined
      : (creds ?? (first ? { username: first[0], password: first[1] } : undefined));
  const headers: Record<string, string> = {};
  if (who !== undefined) headers.authorization = basicAuth(who.username, who.password);
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`token server answered ${res.status}`);
  const body = (await res.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  if (token === undefined) throw new Error("token server answered without a token");
  return token;
}

/**
 * The headers to read `repo` (default actions: pull) as the registry's first user: nothing
 * when anonymous, Basic for htpasswd, a fresh Bearer token for token mode.
 */
export async function authHeaders(
  registry: RegistryHandle,
  repo: string,
  actions = "pull",
): Promise<Record<string, string>> {
  const first = Object.entries(registry.users)[0];
  if (registry.mode === "anonymous" || first === undefined) return {};
  if (registry.mode === "htpasswd") return { authorization: basicAuth(first[0], first[1]) };
  return {
    authorization: `Bearer ${await fetchToken(registry, [`repository:${repo}:${actions}`])}`,
  };
}

/**
 * Writes a docker `config.json` holding the registry's first user under `registry.host`
 * (nothing under `auths` when anonymous) in a fresh temp dir (or `dir`); returns its path.
 */
export function writeDockerConfig(
  registry: RegistryHandle,
  opts: { dir?: string; host?: string; username?: string; password?: string } = {},
): string {
  const dir = opts.dir ?? makeTempDir("regscan-docker-config-");
  const first = Object.entries(registry.users)[0];
  const username = opts.username ?? first?.[0];
  const password = opts.password ?? first?.[1];
  const auths: Record<string, { auth: string }> = {};
  if (username !== undefined && password !== undefined) {
    auths[opts.host ?? registry.host] = {
      auth: Buffer.from(`${username}:${password}`).toString("base64"),
    };
  }
  const path = join(dir, "config.json");
  writeFileSync(path, `${JSON.stringify({ auths }, null, 2)}\n`);
  return path;
}
