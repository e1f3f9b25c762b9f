/**
 * What a webhook delivery writes to the log: a delivery with events to refresh is an `info`
 * line; one with nothing in it (a registry's pull notifications, regscan's own included) is
 * `debug`, so that a registry notifying regscan does not flood its log.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import type { Registry } from "../../src/registry/registry.js";
import { ApiServer } from "../../src/server/api-server.js";
import type { WarmerControl } from "../../src/server/warmer-control.js";
import { WebhookEndpoint } from "../../src/server/webhook-endpoint.js";
import { webhooksSchema } from "../../src/server/webhooks/config.js";
import { WebhookReceivers } from "../../src/server/webhooks/receivers.js";

const HOOK = "hook-secret-4f21";
const lines: { level: number; msg: string; result?: string }[] = [];
let server: ApiServer;
let port: number;

const warmer: WarmerControl = {
  statuses: async () => [],
  isWatched: async () => true,
  requestRefresh: () => "started",
  subscribe: () => () => {},
};

before(async () => {
  const receivers = await WebhookReceivers.create(
    webhooksSchema.parse({ distribution: { secret: "env:HOOK" } }),
    { env: { HOOK } },
  );
  const capture = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = pino({ level: "info" }, capture);
  const metrics = new MetricsRegistry();
  const sink = { deliver: () => ({ refreshed: 1, unwatched: 0 }) };
  server = new ApiServer({
    registry: {} as Registry,
    warmer,
    metrics,
    logger,
    ready: async () => {},
    webhooks: new WebhookEndpoint({ receivers, sink, metrics, logger }),
  });
  port = ((await server.listen("127.0.0.1:0")) as AddressInfo).port;
});

after(async () => {
  await server.close(100);
});

function notify(action: string, tag?: string): Promise<number> {
  const body = JSON.stringify({
    events: [
      {
        id: `e-${action}`,
        timestamp: new Date().toISOString(),
        action,
        target: {
          mediaType: "application/vnd.docker.distribution.manifest.v2+json",
          digest: `sha256:${"a".repeat(64)}`,
          repository: "team/app",
          // JSON.stringify leaves the key out when there is no tag.
          tag,
        },
        request: { host: "localhost:5000" },
      },
    ],
  });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/v1/webhooks/distribution",
        headers: {
          authorization: `Bearer ${HOOK}`,
          "content-type": "application/vnd.docker.distribution.events.v1+json",
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test("a pull notification is accepted without an info line; a push is logged at info", async () => {
  assert.equal(await notify("pull", "v1"), 202);
  assert.deepEqual(
    lines.filter((l) => l.msg === "webhook received"),
    [],
    "a delivery with no event to refresh is not an info line",
  );
  assert.equal(await notify("push", "v1"), 202);
  const received = lines.filter((l) => l.msg === "webhook received");
  assert.equal(received.length, 1);
  assert.equal(received[0]?.level, 30);
  assert.equal(received[0]?.result, "accepted");
});
