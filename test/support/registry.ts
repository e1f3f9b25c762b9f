/**
 * Starts the real CNCF distribution registry (Debian's `docker-registry`, 2.8) for tests, on a
 * free 127.0.0.1 port with temporary filesystem storage, anonymous or with htpasswd or token
 * auth, optionally over TLS, behind a recording proxy that tests use to count requests.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { stringify } from "yaml";
import { type CertFiles, generateCa, generateLeaf, generateServerCert } from "./certs.js";
import type { FaultHook } from "./faults.js";
import { freePort } from "./ports.js";
import {
  type ManagedProcess,
  makeTempDir,
  onCleanup,
  removeTempDir,
  requireBinary,
  startProcess,
} from "./processes.js";
import {
  type PaginationOptions,
  type RecordedRequest,
  type RecordingProxy,
  startRecordingProxy,
} from "./recording-proxy.js";
import { startTokenServer, type TokenServer } from "./token-server.js";

export type { FaultHook, FaultRequest, FaultResponse } from "./faults.js";
export type { PaginationOptions, RecordedRequest } from "./recording-proxy.js";
export type { TokenRequest, TokenServer } from "./token-server.js";

export type RegistryMode = "anonymous" | "htpasswd" | "token";

export interface StartRegistryOptions {
  /** Default "anonymous". */
  mode?: RegistryMode;
  /** username -> password, for htpasswd and token modes. Default `{ alice: "wonderland-<random>" }`. */
  users?: Record<string, string>;
  /** Token mode: anonymous requests may pull (default false). */
  anonymousPull?: boolean;
  /** Token mode: `expires_in` of tokens in seconds (default 300). */
  tokenExpiresInSeconds?: number;
  /** Serve the registry (and proxy and token server) over HTTPS with a cert from a fresh CA. */
  tls?: boolean;
  /** Put the recording proxy in front (default true). Without it, `host` is the registry's. */
  proxy?: boolean;
  /** Proxy pagination of tags/list from the start (see RecordingProxy.setPagination). */
  pagination?: PaginationOptions;
  /** Extra environment for the registry process (REGISTRY_* overrides the config file). */
  env?: Record<string, string>;
}

/** A running registry. */
export interface RegistryHandle {
  /** `127.0.0.1:PORT` — what clients use (the proxy when there is one). */
  readonly host: string;
  /** `http(s)://127.0.0.1:PORT` for `host`. */
  readonly url: string;
  /** The registry's own address, bypassing the proxy (setup traffic that should not be counted). */
  readonly directHost: string;
  readonly directUrl: string;
  readonly mode: RegistryMode;
  readonly tls: boolean;
  /** username -> password (empty in anonymous mode). */
  readonly users: Readonly<Record<string, string>>;
  /** Token mode only. */
  readonly tokenServer: TokenServer | undefined;
  /** The `service` of the token challenge (token mode). */
  readonly service: string | undefined;
  /** With `tls`: the CA that signed the registry's certificate (PEM file). */
  readonly caFile: string | undefined;
  /** The filesystem storage root (`storage.filesystem.rootdirectory`). */
  readonly storageDir: string;
  /** The registry config file written for this run. */
  readonly configFile: string;
  /** Requests the proxy received, oldest first (empty when `proxy: false`). */
  requests(): RecordedRequest[];
  resetRequests(): void;
  /** Faults injected by the proxy; undefined removes the hook. Needs the proxy. */
  setFault(hook: FaultHook | undefined): void;
  /** tags/list pagination by the proxy, or false to pass tags/list through. Needs the proxy. */
  setPagination(pagination: PaginationOptions | false): void;
  /** TCP connections the proxy accepted / that failed before a request (see RecordingProxy). */
  connections(): { accepted: number; failed: number };
  /** Everything the registry process logged. */
  logs(): string;
  stop(): Promise<void>;
}

const SERVICE = "regscan-test-registry";
const ISSUER = "regscan-test-token-server";

function registryConfig(
  storageDir: string,
  port: number,
  opts: {
    mode: RegistryMode;
    htpasswdFile: string;
    token: { realm: string; rootcertbundle: string } | undefined;
    tls: { certificate: string; key: string } | undefined;
  },
): string {
  const auth =
    opts.mode === "htpasswd"
      ? { htpasswd: { realm: "regscan-test", path: opts.htpasswdFile } }
      : opts.mode === "token" && opts.token !== undefined
        ? {
            token: {
              realm: opts.token.realm,
              service: SERVICE,
              issuer: ISSUER,
              rootcertbundle: opts.token.rootcertbundle,
              autoredirect: false,
            },
          }
        : undefined;
  const config = {
    version: 0.1,
    log: { level: "warn", accesslog: { disabled: true }, formatter: "text" },
    storage: {
      filesystem: { rootdirectory: storageDir },
      // Blob descriptors (digest, size, media type) from memory instead of a stat of the
      // data file and its repository link on every manifest HEAD and GET: the tests push
      // and delete only through the API, which keeps the cache true.
      cache: { blobdescriptor: "inmemory" },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${port}`,
      secret: randomBytes(24).toString("hex"),
      headers: { "X-Content-Type-Options": ["nosniff"] },
      // yaml leaves keys whose value is undefined out of the file.
      tls: opts.tls,
    },
    auth,
  };
  return stringify(config);
}

/**
 * The Go runtime's settings for the registry, which `env` may override. One P: with one per
 * core, idle threads spin looking for work between the tests' small requests, and a
 * collection every 100% of heap growth is frequent for a process that allocates per request
 * and keeps little: together they were half the registry's CPU time for 3,000 HEADs.
 */
const GO_RUNTIME_ENV = { GOMAXPROCS: "1", GOGC: "400" };

function cleanEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...GO_RUNTIME_ENV };
  // REGISTRY_* variables override the config file; a stray one in the test environment
  // would silently change the registry under test.
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("REGISTRY_") && !k.startsWith("OTEL_")) env[k] = v;
  }
  return { ...env, ...extra };
}

function pingHttps(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port,
        path: "/v2/",
        method: "GET",
        ca,
        servername: "localhost",
        timeout: 1000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      },
    );
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function pingHttp(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(1000) });
  await res.arrayBuffer();
  return res.status === 200 || res.status === 401;
}

/**
 * Starts `docker-registry` in the given mode. Throws naming `apt-get install docker-registry`
 * when the binary is missing. Everything started is stopped at the end of the tests even
 * without `stop()`.
 */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<RegistryHandle> {
  const binary = requireBinary("docker-registry", "docker-registry");
  const mode = opts.mode ?? "anonymous";
  const users: Record<string, string> =
    mode === "anonymous"
      ? {}
      : (opts.users ?? { alice: `wonderland-${randomBytes(6).toString("hex")}` });
  const dir = makeTempDir("regscan-registry-");
  const storageDir = join(dir, "storage");
  mkdirSync(storageDir);
  const stops: Array<() => Promise<void>> = [];

  try {
    let ca: CertFiles | undefined;
    let serverCert: CertFiles | undefined;
    if (opts.tls === true || mode === "token") ca = generateCa(dir);
    if (opts.tls === true && ca !== undefined) serverCert = generateServerCert(dir, ca);

    const htpasswdFile = join(dir, "htpasswd");
    // Cost 5: distribution checks the password on every request, and cost 10 costs ~60 ms.
    writeFileSync(
      htpasswdFile,
      Object.entries(users)
        .map(([u, p]) => `${u}:${bcrypt.hashSync(p, 5)}\n`)
        .join(""),
    );

    let tokenServer: TokenServer | undefined;
    let tokenConfig: { realm: string; rootcertbundle: string } | undefined;
    if (mode === "token" && ca !== undefined) {
      const signer = generateLeaf({ dir, name: "token-signer", ca }, { commonName: ISSUER });
      tokenServer = await startTokenServer({
        users,
        service: SERVICE,
        issuer: ISSUER,
        signer,
        anonymousPull: opts.anonymousPull,
        expiresInSeconds: opts.tokenExpiresInSeconds,
        tls: serverCert,
      });
      const ts = tokenServer;
      stops.push(() => ts.stop());
      tokenConfig = { realm: tokenServer.realm, rootcertbundle: ca.certFile };
    }

    let proc: ManagedProcess | undefined;
    let port = 0;
    let configFile = "";
    // freePort releases the port before the registry binds it; another test file may take
    // it in between, so retry a few times with a fresh port.
    for (let attempt = 1; attempt <= 4 && proc === undefined; attempt++) {
      port = await freePort();
      configFile = join(dir, "config.yml");
      writeFileSync(
        configFile,
        registryConfig(storageDir, port, {
          mode,
          htpasswdFile,
          token: tokenConfig,
          tls:
            serverCert !== undefined
              ? { certificate: serverCert.certFile, key: serverCert.keyFile }
              : undefined,
        }),
      );
      const caPem = ca?.certPem ?? "";
      const p = port;
      try {
        proc = await startProcess({
          name: "docker-registry",
          command: binary,
          args: ["serve", configFile],
          env: cleanEnv(opts.env),
          ready: { check: () => (serverCert !== undefined ? pingHttps(p, caPem) : pingHttp(p)) },
          readyTimeoutMs: 15_000,
        });
      } catch (err) {
        const inUse = err instanceof Error && /address already in use/.test(err.message);
        if (!inUse || attempt === 4) throw err;
      }
    }
    if (proc === undefined) throw new Error("docker-registry did not start");
    const registryProc = proc;
    stops.push(() => registryProc.stop());

    const scheme = serverCert !== undefined ? "https" : "http";
    const directHost = `127.0.0.1:${port}`;
    let proxy: RecordingProxy | undefined;
    if (opts.proxy !== false) {
      proxy = await startRecordingProxy({
        upstream: {
          host: "127.0.0.1",
          port,
          tls: ca !== undefined && serverCert !== undefined ? { ca: ca.certPem } : undefined,
        },
        tls: serverCert,
      });
      const px = proxy;
      stops.push(() => px.stop());
      if (opts.pagination !== undefined) proxy.setPagination(opts.pagination);
    }
    const host = proxy?.host ?? directHost;
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      for (const s of [...stops].reverse()) {
        try {
          await s();
        } catch {
          // keep stopping the rest
        }
      }
      removeTempDir(dir);
    };
    onCleanup(stop);
    const needProxy = (what: string) => {
      if (proxy === undefined) throw new Error(`${what} needs the recording proxy (proxy: true)`);
      return proxy;
    };

    return {
      host,
      url: `${scheme}://${host}`,
      directHost,
      directUrl: `${scheme}://${directHost}`,
      mode,
      tls: serverCert !== undefined,
      users,
      tokenServer,
      service: mode === "token" ? SERVICE : undefined,
      caFile: serverCert !== undefined ? ca?.certFile : undefined,
      storageDir,
      configFile,
      requests: () => proxy?.requests() ?? [],
      resetRequests: () => proxy?.resetRequests(),
      setFault: (hook) => needProxy("setFault").setFault(hook),
      setPagination: (p) => needProxy("setPagination").setPagination(p),
      connections: () => needProxy("connections").connections(),
      logs: () => registryProc.output(),
      stop,
    };
  } catch (err) {
    for (const s of [...stops].reverse()) await s().catch(() => undefined);
    removeTempDir(dir);
    throw err;
  }
}

/** Reads the CA file of a TLS registry (PEM), for clients that take the CA as text. */
export function readCa(registry: RegistryHandle): string {
  if (registry.caFile === undefined) throw new Error("registry was not started with tls: true");
  return readFileSync(registry.caFile, "utf8");
}
