/**
 * Parses the docker CLI's `config.json` (`auths`, `credsStore`, `credHelpers`) and the
 * older Kubernetes `.dockercfg` form (server keys at the top level) into credentials by host.
 * Any input gives a result or a `CredentialsFileError` naming the file and entry.
 */
import { CredentialsFileError } from "./errors.js";
import { StoredHostCredential } from "./host-credential.js";
import { DOCKER_HUB_HOST, DOCKER_HUB_SERVER_URL, hostOfServerKey } from "./server-key.js";

/** What a docker config file says about credentials. */
export interface DockerConfigContent {
  /** Static credentials by host (`host[:port]`, Docker Hub as `docker.io`). */
  entries: Map<string, StoredHostCredential>;
  /** The helper for every host without a `credHelpers` entry (docker's `credsStore`). */
  credsStore: string | undefined;
  /** Helper names by host (docker's `credHelpers`). */
  credHelpers: Map<string, string>;
}

// Top-level keys of a docker CLI config.json; their presence means the file is not the
// `.dockercfg` form, whose top-level keys are all server addresses.
const CONFIG_JSON_KEYS = new Set([
  "auths",
  "credsStore",
  "credHelpers",
  "HttpHeaders",
  "psFormat",
  "imagesFormat",
  "networksFormat",
  "pluginsFormat",
  "volumesFormat",
  "statsFormat",
  "detachKeys",
  "serviceInspectFormat",
  "servicesFormat",
  "tasksFormat",
  "secretFormat",
  "configFormat",
  "nodesFormat",
  "pruneFilters",
  "proxies",
  "experimental",
  "stackOrchestrator",
  "kubernetes",
  "currentContext",
  "currentContextName",
  "plugins",
  "aliases",
  "features",
  "cliPluginsExtraDirs",
]);

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const SECRET_FIELDS = ["auth", "username", "password", "identitytoken", "registrytoken"] as const;

/**
 * Parses a docker config file's bytes. `from` names the file in errors; `provenance` is
 * recorded on every credential (default `docker-config:<from>`).
 */
export function parseDockerConfig(file: {
  from: string;
  bytes: Uint8Array | string;
  provenance?: string | undefined;
}): DockerConfigContent {
  const { from, bytes, provenance = `docker-config:${from}` } = file;
  const doc = parseJsonObject(from, bytes);
  const result: DockerConfigContent = {
    entries: new Map(),
    credsStore: undefined,
    credHelpers: new Map(),
  };
  const isConfigJson = Object.keys(doc).some((k) => CONFIG_JSON_KEYS.has(k));
  let auths: Record<string, unknown> = {};
  if (isConfigJson) {
    const a = doc.auths;
    if (a !== undefined && a !== null) {
      if (!isPlainObject(a))
        throw new CredentialsFileError({ file: from, reason: "auths is not an object" });
      auths = a;
    }
    result.credsStore = parseCredsStore(from, doc.credsStore);
    result.credHelpers = parseCredHelpers(from, doc.credHelpers);
  } else {
    auths = doc;
  }
  const ranks = new Map<string, number>();
  for (const [key, value] of Object.entries(auths)) {
    const host = hostOfServerKey(key);
    if (host === undefined)
      throw new CredentialsFileError({ file: from, entry: key, reason: "not a registry host" });
    const cred = parseEntry({ from, key, host, value, provenance });
    if (cred === undefined) continue;
    const rank = exactKeyFor(host) === key.trim() ? 0 : 1;
    const seen = ranks.get(host);
    // Like docker: the key it would look up verbatim wins over aliases and URL forms.
    if (seen !== undefined && seen <= rank) continue;
    ranks.set(host, rank);
    result.entries.set(host, cred);
  }
  return result;
}

function exactKeyFor(host: string): string {
  return host === DOCKER_HUB_HOST ? DOCKER_HUB_SERVER_URL : host;
}

function parseJsonObject(from: string, bytes: Uint8Array | string): Record<string, unknown> {
  let text: string;
  if (typeof bytes === "string") {
    text = bytes;
  } else {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (err) {
      throw new CredentialsFileError({ file: from, reason: "not valid UTF-8", cause: err });
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // V8's message quotes the input, which may hold a secret: it is not passed on.
    throw new CredentialsFileError({ file: from, reason: "not valid JSON" });
  }
  if (!isPlainObject(doc))
    throw new CredentialsFileError({ file: from, reason: "not a JSON object" });
  return doc;
}

function parseCredsStore(from: string, v: unknown): string | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string" || !HELPER_NAME.test(v)) {
    throw new CredentialsFileError({
      file: from,
      reason: "credsStore is not a credential helper name",
    });
  }
  return v;
}

function parseCredHelpers(from: string, v: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (v === undefined || v === null) return out;
  if (!isPlainObject(v))
    throw new CredentialsFileError({ file: from, reason: "credHelpers is not an object" });
  for (const [key, name] of Object.entries(v)) {
    const host = hostOfServerKey(key);
    if (host === undefined)
      throw new CredentialsFileError({ file: from, entry: key, reason: "not a registry host" });
    if (typeof name !== "string" || !HELPER_NAME.test(name)) {
      throw new CredentialsFileError({
        file: from,
        entry: key,
        reason: "credHelpers value is not a credential helper name",
      });
    }
    out.set(host, name);
  }
  return out;
}

/** One `auths` entry: `key` as written, `host` as it names the registry. */
function parseEntry(entry: {
  from: string;
  key: string;
  host: string;
  value: unknown;
  provenance: string;
}): StoredHostCredential | undefined {
  const { from, key, host, value, provenance } = entry;
  if (!isPlainObject(value))
    throw new CredentialsFileError({ file: from, entry: key, reason: "entry is not an object" });
  const f: Partial<Record<(typeof SECRET_FIELDS)[number], string>> = {};
  for (const name of SECRET_FIELDS) {
    const v = value[name];
    if (v === undefined || v === null || v === "") continue;
    if (typeof v !== "string") {
      throw new CredentialsFileError({
        file: from,
        entry: key,
        reason: `field ${name} is not a string`,
      });
    }
    f[name] = v;
  }
  let username = f.username;
  let password = f.password;
  if (f.auth !== undefined) {
    // As docker does: `auth` (base64 of user:password) overrides username / password.
    [username, password] = decodeAuth({ from, key, auth: f.auth });
  }
  if (
    username === undefined &&
    password === undefined &&
    f.identitytoken === undefined &&
    f.registrytoken === undefined
  ) {
    // An empty entry is what `docker login` leaves when a credsStore holds the secret.
    return undefined;
  }
  return new StoredHostCredential({
    host,
    username,
    password,
    identityToken: f.identitytoken,
    registryToken: f.registrytoken,
    provenance,
  });
}

/** The `auth` field of entry `key` in file `from`: base64 of `user:password`. */
function decodeAuth(field: { from: string; key: string; auth: string }): [string, string] {
  const { from, key, auth } = field;
  const compact = auth.replace(/\s+/g, "");
  if (!BASE64.test(compact) || compact.replace(/=+$/, "").length % 4 === 1) {
    throw new CredentialsFileError({
      file: from,
      entry: key,
      reason: "field auth is not valid base64",
    });
  }
  const decoded = Buffer.from(compact.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString(
    "utf8",
  );
  const colon = decoded.indexOf(":");
  if (colon < 0) {
    throw new CredentialsFileError({
      file: from,
      entry: key,
      reason: "field auth does not decode to username:password",
    });
  }
  return [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
