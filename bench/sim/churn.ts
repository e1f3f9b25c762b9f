/**
 * The churn generator: moves and adds tags on the simulated registries at a set rate,
 * records when each change happened (the ground truth that staleness is measured against),
 * and can announce each change with a distribution-format webhook.
 */
import { randomUUID } from "node:crypto";
import { request } from "undici";
import type { SimRegistry } from "./registry-server.js";
import { hash32, seededRandom } from "./rng.js";

/** One change, as it happened. */
export interface Change {
  registry: string;
  repository: string;
  tag: string;
  action: "move" | "add";
  digest: string;
  mediaType: string;
  size: number;
  /** Epoch ms when the registry started serving it. */
  at: number;
}

export interface WebhookTarget {
  url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Deadline of one delivery, ms (default 5,000). */
  timeoutMs?: number;
}

export interface ChurnOptions {
  /** Changes per second over all registries. */
  perSecond: number;
  /** Share of changes that move an existing tag (default 0.7); the rest add a tag. */
  moveShare?: number;
  seed?: string;
  /** Share of changes that land on the few "hot" repositories (default 0.8). */
  hotShare?: number;
  webhook?: WebhookTarget;
  /** Most webhook deliveries in flight; more are counted as dropped (default 32). */
  maxInFlight?: number;
}

export const WEBHOOK_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json";

const TICK_MS = 50;

export class ChurnGenerator {
  readonly changes: Change[] = [];
  readonly webhooks = { sent: 0, failed: 0, dropped: 0 };
  readonly #registries: SimRegistry[];
  readonly #opts: ChurnOptions;
  readonly #random: () => number;
  readonly #instanceId = randomUUID();
  #timer: NodeJS.Timeout | undefined;
  #owed = 0;
  #last = 0;
  #inFlight = 0;
  readonly #pending = new Set<Promise<void>>();

  constructor(registries: SimRegistry[], opts: ChurnOptions) {
    if (!(opts.perSecond >= 0)) throw new Error("churn perSecond must be a number >= 0");
    this.#registries = registries;
    this.#opts = opts;
    this.#random = seededRandom(hash32(opts.seed ?? "churn"));
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#last = Date.now();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Stops making changes and waits for webhooks in flight. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#pending]);
  }

  /** Changes made at or after `since` (epoch ms). */
  since(since: number): Change[] {
    return this.changes.filter((c) => c.at >= since);
  }

  #tick(): void {
    const now = Date.now();
    this.#owed += ((now - this.#last) / 1000) * this.#opts.perSecond;
    this.#last = now;
    while (this.#owed >= 1) {
      this.#owed--;
      this.changeOne();
    }
  }

  /** Makes one change now (also usable without start(), for tests). */
  changeOne(): Change | undefined {
    const registry = this.#registries[Math.floor(this.#random() * this.#registries.length)];
    if (registry === undefined) return undefined;
    const repos = registry.content.repositories();
    if (repos.length === 0) return undefined;
    // A few repositories get most of the pushes, as in real fleets.
    // Every 20th repository is "hot".
    const pick =
      this.#random() < (this.#opts.hotShare ?? 0.8)
        ? Math.floor(this.#random() * Math.ceil(repos.length / 20)) * 20
        : Math.floor(this.#random() * repos.length);
    const repository = repos[Math.min(pick, repos.length - 1)] as string;
    let change: Change;
    if (this.#random() < (this.#opts.moveShare ?? 0.7)) {
      // The newest tags and `latest` move most.
      const recent = registry.content.recentTags(repository, 10);
      const tag = recent[Math.floor(this.#random() * recent.length)] as string;
      const image = registry.content.moveTag(repository, tag);
      change = this.#record(registry, repository, tag, "move", image);
    } else {
      const { tag, image } = registry.content.addTag(repository);
      change = this.#record(registry, repository, tag, "add", image);
    }
    if (this.#opts.webhook !== undefined) this.#announce(registry, change, this.#opts.webhook);
    return change;
  }

  #record(
    registry: SimRegistry,
    repository: string,
    tag: string,
    action: "move" | "add",
    image: { digest: string; mediaType: string; bytes: Buffer },
  ): Change {
    const change: Change = {
      registry: registry.name,
      repository,
      tag,
      action,
      digest: image.digest,
      mediaType: image.mediaType,
      size: image.bytes.length,
      at: Date.now(),
    };
    this.changes.push(change);
    return change;
  }

  #announce(registry: SimRegistry, change: Change, target: WebhookTarget): void {
    if (this.#inFlight >= (this.#opts.maxInFlight ?? 32)) {
      this.webhooks.dropped++;
      return;
    }
    this.#inFlight++;
    const body = JSON.stringify(webhookEnvelope(registry, change, this.#instanceId));
    const headers: Record<string, string> = { "content-type": WEBHOOK_MEDIA_TYPE };
    if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
    const p = request(target.url, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(target.timeoutMs ?? 5000),
    })
      .then(async (res) => {
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) this.webhooks.sent++;
        else this.webhooks.failed++;
      })
      .catch(() => {
        this.webhooks.failed++;
      })
      .finally(() => {
        this.#inFlight--;
        this.#pending.delete(p);
      });
    this.#pending.add(p);
  }
}

/** distribution's notification envelope for one push (docs: distribution "notifications"). */
export function webhookEnvelope(registry: SimRegistry, change: Change, instanceId: string) {
  return {
    events: [
      {
        id: randomUUID(),
        timestamp: new Date(change.at).toISOString(),
        action: "push",
        target: {
          mediaType: change.mediaType,
          digest: change.digest,
          repository: change.repository,
          tag: change.tag,
          size: change.size,
          length: change.size,
          url: `${registry.url}/v2/${change.repository}/manifests/${change.digest}`,
        },
        request: {
          id: randomUUID(),
          addr: "127.0.0.1",
          host: registry.host,
          method: "PUT",
          useragent: "regscan-sim",
        },
        actor: {},
        source: { addr: registry.host, instanceID: instanceId },
      },
    ],
  };
}
