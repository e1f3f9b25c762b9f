/**
 * Reduces the server keys found in docker config files (`https://index.docker.io/v1/`,
 * `http://host:5000/v2/`, `host:5000`) to the registry host they name, and says which keys a
 * lookup for a host may match, so that every Docker Hub alias finds the same entry.
 */

/** The key every Docker Hub alias is stored under. */
export const DOCKER_HUB_HOST = "docker.io";

/** What the docker CLI calls Docker Hub when it talks to a credential helper. */
export const DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/";

const DOCKER_HUB_ALIASES = new Set([
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
  "registry.hub.docker.com",
]);

const HOST_PORT = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|[a-z0-9])(?::(\d{1,5}))?$/;

/**
 * The registry host (`host` or `host:port`, lower case, Docker Hub as `docker.io`) that a
 * server key names, or `undefined` when the key names no host.
 */
export function hostOfServerKey(key: string): string | undefined {
  let rest = key.trim();
  if (rest === "") return undefined;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(rest);
  if (scheme) rest = rest.slice(scheme[0].length);
  // Drop any path (`/v1/`, `/v2/`), query or user info the key was written with.
  rest = rest.split(/[/?#]/, 1)[0] ?? "";
  const at = rest.lastIndexOf("@");
  if (at >= 0) rest = rest.slice(at + 1);
  rest = rest.toLowerCase();
  const m = HOST_PORT.exec(rest);
  if (!m) return undefined;
  const name = m[1] ?? "";
  const port = m[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return undefined;
  if (DOCKER_HUB_ALIASES.has(name) && (port === undefined || port === "443")) {
    return DOCKER_HUB_HOST;
  }
  // 443 is the port every registry is reached on when none is given.
  return port === undefined || port === "443" ? name : `${name}:${port}`;
}

/** The server URL the docker CLI would hand a credential helper for this host. */
export function helperServerUrl(host: string): string {
  return host === DOCKER_HUB_HOST ? DOCKER_HUB_SERVER_URL : host;
}
