/**
 * Kubernetes image pull secrets mounted as files: a directory holding `.dockerconfigjson`
 * or `.dockercfg` files, either directly (one secret mounted there, or several flat files)
 * or one sub-directory per secret, as a secret volume mounts them.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Credentials, type CredentialsOptions } from "./credentials.js";
import { CredentialsFileError, describeCause } from "./errors.js";
import { readDockerConfigFile } from "./image-creds.js";

const SECRET_KEYS = [".dockerconfigjson", ".dockercfg"];

/**
 * Every pull-secret file under `dir`, sorted by path. A file is a key file named
 * `.dockerconfigjson` / `.dockercfg`, or any other regular file directly in `dir`; names
 * starting with `..` are Kubernetes' own bookkeeping and are skipped.
 */
export async function findPullSecretFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new CredentialsFileError({
      file: dir,
      reason: `cannot be read (${describeCause(err)})`,
      cause: err,
    });
  }
  for (const name of names.sort()) {
    if (name.startsWith("..")) continue;
    const path = join(dir, name);
    // stat, not lstat: a secret volume's key files are symlinks into `..data`.
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile()) {
      found.push(path);
    } else if (info?.isDirectory()) {
      for (const key of SECRET_KEYS) {
        const keyPath = join(path, key);
        if ((await stat(keyPath).catch(() => undefined))?.isFile()) found.push(keyPath);
      }
    }
  }
  return found;
}

/**
 * The credentials of every pull secret under `dir`. Where two secrets hold the same host,
 * the one whose path sorts first wins (as the first matching `imagePullSecrets` entry
 * would). A file that does not parse is a `CredentialsFileError` naming it.
 */
export async function loadPullSecrets(
  dir: string,
  opts: CredentialsOptions = {},
): Promise<Credentials> {
  const files = await findPullSecretFiles(dir);
  let creds = Credentials.none();
  for (const file of files.reverse()) {
    const secret = await readDockerConfigFile(file, {
      ...opts,
      // Parsing a secret asks no cloud unless the caller says so, as `Credentials.parse`.
      cloudProviders: opts.cloudProviders ?? [],
      provenance: opts.provenance ?? `pull-secret:${file}`,
    });
    creds = creds.merge(secret);
  }
  return creds;
}
