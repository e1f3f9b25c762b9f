/**
 * The webhook routes of the API server (real receivers, a recording sink): no API token, no
 * per-client rate bound and no 64 KiB body bound for them, 413 with `Connection: close`, the
 * path secret never echoed; and event streams that replay what a reconnecting client missed.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import type { ImageName } from "../../src/image/ref.js";
import type { Registry } from "../../src/registry/registry.js";
import { ApiServer } from "../../src/server/api-server.js";
import type {
  RefreshRequestOutcome,
  ReplayedEvent,
  RepositoryStatus,
  TagEvent,
  WarmerControl,
} from "../../src/server/warmer-control.js";
import { WebhookEndpoint, type WebhookSink } from "../../src/server/webhook-endpoint.js";
import { webhooksSchema } from "../../src/server/webhooks/config.js";
import type { NormalisedEvent } from "../../src/server/webhooks/event.js";
import { WebhookReceivers } from "../../src/server/webhooks/receivers.js";
import { type Answer, type Call, call } from "./http-call.js";

const API_TOKEN = "api-tok-55a1";
const HOOK = "hook-secret-90be";
const PATH_SECRET = "path-secret-13cd";

class StreamWarmer implements WarmerControl {
  listeners = new Set<(e: TagEvent, id?: string) => void>();
  kept: ReplayedEvent[] = [];
  async statuses(): Promise<RepositoryStatus[]> {
    return [];
  }
  async isWatched(): Promise<boolean> {
    return true;
  }
  requestRefresh(_name: ImageName): RefreshRequestOutcome {
    return "started";
  }
  subscribe(listener: (e: TagEvent, id?: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  async replay(lastEventId: string): Promise<ReplayedEvent[] | undefined> {
    const at = this.kept.findIndex((k) => k.id === lastEventId);
    // A new event comes while the missed ones are read: it must follow them, once.
    this.emit(this.kept[this.kept.length - 1] as ReplayedEvent);
    return at < 0 ? undefined : this.kept.slice(at + 1);
  }
  emit(e: ReplayedEvent): void {
    for (const l of this.listeners) l(e.event, e.id);
  }
}

function tagEvent(tag: string): TagEvent {
  return {
    type: "new-tag",
    repository: "localhost:5000/team/app",
    tag,
    digest: "sha256:aa",
    at: new Date(),
  };
}

/** A POST to the API server. */
function post(request: Omit<Call, "method">): Promise<Answer> {
  return call({ ...request, method: "POST" });
}

describe("webhook routes of the API server", () => {
  const delivered: NormalisedEvent[] = [];
  const warmer = new StreamWarmer();
  let server: ApiServer;
  let port: number;

  before(async () => {
    const receivers = await WebhookReceivers.create(
      webhooksSchema.parse({
        generic: { secret: "env:HOOK" },
        quay: { secret: "env:PATH_SECRET" },
      }),
      { env: { HOOK, PATH_SECRET } },
    );
    const sink: WebhookSink = {
      deliver: (_kind, events) => {
        delivered.push(...events);
        return { refreshed: events.length, unwatched: 0 };
      },
    };
    const metrics = new MetricsRegistry();
    const logger = pino({ level: "silent" });
    server = new ApiServer({
      registry: {} as Registry,
      warmer,
      metrics,
      logger,
      ready: async () => {},
      apiToken: API_TOKEN,
      rateLimit: { rps: 1, burst: 2 },
      webhooks: new WebhookEndpoint({ receivers, sink, metrics, logger }),
    });
    port = ((await server.listen("127.0.0.1:0")) as AddressInfo).port;
  });

  after(async () => {
    await server.close(100);
  });

  test("a webhook needs its receiver's secret, not the API token, and is not rate-bound like /v1", async () => {
    const body = JSON.stringify({ repository: "localhost:5000/team/app", tag: "v1" });
    for (let i = 0; i < 5; i++) {
      const res = await post({
        port,
        path: "/v1/webhooks/generic",
        body,
        headers: {
          authorization: `Bearer ${HOOK}`,
          "content-type": "application/json",
        },
      });
      assert.equal(res.status, 202, res.body);
    }
    assert.equal(delivered.length, 5);
    const withApiToken = await post({
      port,
      path: "/v1/webhooks/generic",
      body,
      headers: {
        authorization: `Bearer ${API_TOKEN}`,
      },
    });
    assert.equal(withApiToken.status, 401);
  });

  test("bodies over 64 KiB and under 1 MiB are read; over 1 MiB is 413 and the connection closed", async () => {
    // 1,000 entries (the most a body may have) with long repository names.
    const list = Array.from({ length: 1_000 }, (_, i) => ({
      repository: `localhost:5000/team/${"a".repeat(60)}${i}`,
      tag: `t${i}`,
    }));
    const big = JSON.stringify(list);
    assert.ok(big.length > 65_536);
    const ok = await post({
      port,
      path: "/v1/webhooks/generic",
      body: big,
      headers: {
        authorization: `Bearer ${HOOK}`,
      },
    });
    assert.equal(ok.status, 202);
    const huge = await post({
      port,
      path: "/v1/webhooks/generic",
      body: Buffer.alloc(2 * 1024 * 1024, 0x20),
      headers: {
        authorization: `Bearer ${HOOK}`,
      },
    });
    assert.equal(huge.status, 413);
    assert.equal(huge.headers.connection, "close");
  });

  test("a path secret is never echoed, right or wrong", async () => {
    const body = JSON.stringify({ repository: "quay.io/ns/app", updated_tags: ["v1"] });
    const wrong = await post({ port, path: `/v1/webhooks/quay/${PATH_SECRET}x`, body });
    assert.equal(wrong.status, 401);
    const unknownKind = await post({ port, path: `/v1/webhooks/harbor/${PATH_SECRET}`, body });
    assert.equal(unknownKind.status, 404);
    for (const r of [wrong, unknownKind]) assert.ok(!r.body.includes(PATH_SECRET), r.body);
  });

  test("a client reconnecting with Last-Event-ID gets the missed events first, then live ones, each once", async () => {
    warmer.kept = ["1-0", "2-0", "3-0", "4-0"].map((id, i) => ({ id, event: tagEvent(`m${i}`) }));
    const controller = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
      headers: { authorization: `Bearer ${API_TOKEN}`, "last-event-id": "2-0" },
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    const deadline = Date.now() + 5_000;
    while (!text.includes("m2") || !text.includes("m3") || !text.includes("live")) {
      if (Date.now() > deadline) assert.fail(`stream so far: ${text}`);
      if (text.includes("m3") && !text.includes("live")) {
        warmer.emit({ id: "5-0", event: tagEvent("live") });
      }
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const ids = [...text.matchAll(/^id: (.+)$/gm)].map((m) => m[1]);
    assert.deepEqual(ids, ["3-0", "4-0", "5-0"]);
  });
});
