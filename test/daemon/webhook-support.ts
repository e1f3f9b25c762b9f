/**
 * Shared by the webhook end-to-end tests and bench: a real registry whose notifications go
 * to a real `regscan serve`, an SSE client that records the events it reads, and waits
 * bounded in time.
 */
import { randomBytes } from "node:crypto";
import { stringify } from "yaml";
import type { ImageBuilder } from "../support/image-builder.js";
import { freePort } from "../support/ports.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import type { ServeProcess } from "./serve-process.js";

/** One server-sent event as read. */
export interface SseEvent {
  id: string | undefined;
  type: string;
  data: Record<string, unknown>;
  /** performance.now() when it was read. */
  at: number;
}

/** An open `/v1/events` stream. */
export interface SseClient {
  events: SseEvent[];
  /** Resolves with the first event (from `from` on) that `match` accepts, or rejects after `timeoutMs`. */
  next(match: (e: SseEvent) => boolean, timeoutMs?: number, from?: number): Promise<SseEvent>;
  close(): void;
}

/** Opens `GET url/v1/events` (with the headers given) and records every event. */
export async function openEvents(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseClient> {
  const controller = new AbortController();
  const res = await fetch(`${url}/v1/events`, { headers, signal: controller.signal });
  if (res.status !== 200 || res.body === null) throw new Error(`events answered ${res.status}`);
  const events: SseEvent[] = [];
  const waiters = new Set<() => void>();
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
          let id: string | undefined;
          let type = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("event: ")) type = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data === "") continue;
          events.push({
            id,
            type,
            data: JSON.parse(data) as Record<string, unknown>,
            at: performance.now(),
          });
          for (const wake of waiters) wake();
        }
      }
    } catch {
      // Closed.
    }
  })();
  return {
    events,
    next(match, timeoutMs = 10_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.slice(from).find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `no matching event within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.data))}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => controller.abort(),
  };
}

/** A registry (behind its recording proxy) that notifies regscan at `ports`. */
export interface NotifyingRegistry {
  registry: RegistryHandle;
  /** The bearer token the registry sends. */
  token: string;
}

/**
 * Starts the registry with one notification endpoint per port, each
 * `http://127.0.0.1:PORT/v1/webhooks/distribution` with `Authorization: Bearer TOKEN`.
 */
export async function startNotifyingRegistry(ports: number[]): Promise<NotifyingRegistry> {
  const token = `hook-${randomBytes(12).toString("hex")}`;
  // REGISTRY_* values are read as YAML, so the endpoint list goes in one variable.
  const endpoints = stringify(
    ports.map((port, i) => ({
      name: `regscan-${i}`,
      url: `http://127.0.0.1:${port}/v1/webhooks/distribution`,
      headers: { Authorization: [`Bearer ${token}`] },
      timeout: "2s",
      threshold: 3,
      backoff: "500ms",
    })),
  );
  const registry = await startRegistry({ env: { REGISTRY_NOTIFICATIONS_ENDPOINTS: endpoints } });
  return { registry, token };
}

/** A free loopback port for a `regscan serve` to listen on. */
export function servePort(): Promise<number> {
  return freePort("127.0.0.1");
}

/** Polls `check` every 10 ms until it is true; throws after `timeoutMs`. */
export async function until(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Registry requests a refresh made, by kind (from the recording proxy). */
export function countRequests(registry: RegistryHandle): {
  tagLists: number;
  heads: Map<string, number>;
  manifestGets: number;
  blobGets: number;
  other: string[];
} {
  const heads = new Map<string, number>();
  let tagLists = 0;
  let manifestGets = 0;
  let blobGets = 0;
  const other: string[] = [];
  for (const r of registry.requests()) {
    const manifest = /^\/v2\/.+\/manifests\/([^/]+)$/.exec(r.path);
    if (r.path.endsWith("/tags/list")) tagLists++;
    else if (manifest && r.method === "HEAD") {
      const ref = manifest[1] as string;
      heads.set(ref, (heads.get(ref) ?? 0) + 1);
    } else if (manifest && r.method === "GET") manifestGets++;
    else if (/\/blobs\/sha256:/.test(r.path) && r.method === "GET") blobGets++;
    else other.push(`${r.method} ${r.path}`);
  }
  return { tagLists, heads, manifestGets, blobGets, other };
}

/** The digest `serve` answers for `ref` (`GET /v1/images/REF`); undefined while it has none. */
export async function servedDigest(
  serve: ServeProcess,
  ref: string,
  headers: Record<string, string> = {},
): Promise<string | undefined> {
  const r = await serve.fetchJson(`/v1/images/${ref}`, { headers });
  return r.status === 200 ? (r.body.digest as string) : undefined;
}

/** What one push measured by {@link measurePush} saw. */
export interface MeasuredPush {
  /** The SSE event that announced the pushed digest. */
  event: SseEvent;
  /** From the end of the push until both the API answered the digest and the event was read. */
  latencyMs: number;
  /** The registry requests the refresh made. */
  requests: ReturnType<typeof countRequests>;
}

/**
 * Pushes a new image as `repo:tag` to the notifying registry and times how long until `serve`
 * both answers its digest and has sent its SSE event, then counts the registry requests the
 * refresh cost. Waits 400 ms first (`quietMs`), so that the previous refresh's window has
 * passed and each push is measured alone, and 300 ms after (`settleMs`), for a straggling
 * request. A caller measuring pushes one after another can count each push's requests itself,
 * just before the next push: its quiet time is then the window for stragglers.
 */
export async function measurePush(opts: {
  registry: RegistryHandle;
  builder: ImageBuilder;
  serve: ServeProcess;
  events: SseClient;
  repo: string;
  tag: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** How long to wait before the push (default 400 ms). */
  quietMs?: number;
  /** How long to wait after it before counting its requests (default 300 ms). */
  settleMs?: number;
}): Promise<MeasuredPush> {
  const { registry, builder, serve, events, repo, tag, timeoutMs } = opts;
  const { quietMs = 400, settleMs = 300 } = opts;
  await new Promise((r) => setTimeout(r, quietMs));
  registry.resetRequests();
  const from = events.events.length;
  const image = await builder.pushImage(repo, [tag]);
  const pushed = performance.now();
  const seen = events.next(
    (e) => e.data.tag === tag && e.data.digest === image.digest,
    timeoutMs,
    from,
  );
  const ref = `${registry.host}/${repo}:${tag}`;
  await until(
    async () => (await servedDigest(serve, ref, opts.headers)) === image.digest,
    `${tag} visible`,
    timeoutMs,
  );
  const visible = performance.now();
  const event = await seen;
  await new Promise((r) => setTimeout(r, settleMs));
  return {
    event,
    latencyMs: Math.max(visible, event.at) - pushed,
    requests: countRequests(registry),
  };
}
