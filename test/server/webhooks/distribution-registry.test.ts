import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { webhooksSchema } from "../../../src/server/webhooks/config.js";
import {
  readWebhookBody,
  WebhookReceivers,
  type WebhookResponse,
} from "../../../src/server/webhooks/receivers.js";
import { ImageBuilder } from "../../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../../support/registry.js";

/**
 * The real sender: Debian's docker-registry with `notifications.endpoints` pointing at a
 * small server that hands each request to the distribution receiver, as `regscan serve` will.
 */
const TOKEN = "dist-notify-t0ken-4471";

describe("distribution receiver with the real registry's notifications", () => {
  let registry: RegistryHandle;
  const server = createServer();
  const answers: Array<{ contentType: string | undefined; res: WebhookResponse }> = [];

  before(async () => {
    const receivers = await WebhookReceivers.create(
      webhooksSchema.parse({ distribution: { secret: "env:HOOK" } }),
      { env: { HOOK: TOKEN } },
    );
    server.on("request", (req, res) => {
      void (async () => {
        const rawBody = await readWebhookBody(req);
        const answer = await receivers.handle({
          kind: req.url === "/v1/webhooks/distribution" ? "distribution" : "none",
          headers: req.headers,
          rawBody,
          remoteAddress: req.socket.remoteAddress ?? "unknown",
        });
        answers.push({ contentType: req.headers["content-type"], res: answer });
        res.writeHead(answer.status).end();
      })();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    // REGISTRY_* values are read as YAML, so the endpoint list goes in one variable.
    const endpoints = stringify([
      {
        name: "regscan",
        url: `http://127.0.0.1:${port}/v1/webhooks/distribution`,
        headers: { Authorization: [`Bearer ${TOKEN}`] },
        timeout: "1s",
        threshold: 3,
        backoff: "1s",
      },
    ]);
    registry = await startRegistry({
      proxy: false,
      env: { REGISTRY_NOTIFICATIONS_ENDPOINTS: endpoints },
    });
  });

  after(async () => {
    await registry?.stop();
    server.closeAllConnections();
    server.close();
  });

  test("a pushed tag arrives as one push event naming the registry's host", async () => {
    const builder = new ImageBuilder(registry);
    try {
      await builder.pushImage("hooks/app", ["v1"], {});
    } finally {
      await builder.close();
    }
    const wanted = (a: (typeof answers)[number]) => a.res.events.some((e) => e.tag === "v1");
    for (let i = 0; i < 100 && !answers.some(wanted); i++)
      await new Promise((r) => setTimeout(r, 100));
    const hit = answers.find(wanted);
    assert.ok(
      hit,
      `no push event within 10 s; answers: ${JSON.stringify(answers.map((a) => a.res.result))}`,
    );
    assert.equal(hit.contentType, "application/vnd.docker.distribution.events.v1+json");
    assert.equal(hit.res.status, 202);
    assert.deepEqual(
      hit.res.events.map((e) => [e.repository, e.tag, e.action]),
      [[`${registry.host}/hooks/app`, "v1", "push"]],
    );
    // Blob uploads were notified too, and accepted as no change.
    assert.ok(
      answers.every((a) => a.res.status === 202),
      JSON.stringify(answers.map((a) => a.res.result)),
    );
    assert.ok(answers.some((a) => a.res.result === "ignored"));
  });
});
