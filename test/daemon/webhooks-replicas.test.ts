/**
 * Issue 12, acceptance 4: two `regscan serve` replicas on one Redis. The registry notifies
 * replica A only; A refreshes once (one listing, one HEAD), an SSE client on replica B sees
 * the event (through the Redis stream), each stream carries each event once, and a client
 * that reconnects to B with `Last-Event-ID` gets the events it missed.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ImageBuilder } from "../support/image-builder.js";
import { cleanupAll } from "../support/processes.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import type { RegistryHandle } from "../support/registry.js";
import { type ServeProcess, startServe } from "./serve-process.js";
import {
  countRequests,
  type NotifyingRegistry,
  openEvents,
  type SseClient,
  servedDigest,
  servePort,
  startNotifyingRegistry,
  until,
} from "./webhook-support.js";

after(cleanupAll);

const REPO = "hooks/shared";

describe("webhooks and events across two replicas on one Redis", () => {
  let registry: RegistryHandle;
  let redis: RedisServer;
  let a: ServeProcess;
  let b: ServeProcess;
  let builder: ImageBuilder;
  const opened: SseClient[] = [];
  const name = () => `${registry.host}/${REPO}`;

  const digestOn = (replica: ServeProcess, tag: string) =>
    servedDigest(replica, `${name()}:${tag}`);

  before(async () => {
    const portA = await servePort();
    let notifying: NotifyingRegistry;
    [redis, notifying] = await Promise.all([startRedis(), startNotifyingRegistry([portA])]);
    registry = notifying.registry;
    builder = new ImageBuilder(registry);
    await builder.pushImage(REPO, ["v0"]);
    const args = (id: string) => [
      "--image",
      name(),
      "--insecure-host",
      registry.host,
      "--cache",
      redis.url,
      "--interval",
      "1h",
      "--replica-id",
      id,
      "--webhook",
      "distribution",
      "--webhook-secret",
      "distribution=env:REGSCAN_TEST_DIST_HOOK",
    ];
    const env = { REGSCAN_TEST_DIST_HOOK: notifying.token };
    [a, b] = await Promise.all([
      startServe(["--listen", `127.0.0.1:${portA}`, ...args("replica-a")], env),
      startServe(args(`replica-b-${randomBytes(3).toString("hex")}`), env),
    ]);
    for (const replica of [a, b]) {
      await until(async () => (await digestOn(replica, "v0")) !== undefined, "v0", 30_000);
    }
    // The set-up push's notifications, delivered once A listened, are let through.
    await new Promise((r) => setTimeout(r, 1_500));
  });

  after(async () => {
    for (const c of opened) c.close();
    await builder?.close();
    // The stream readers end with the daemon: both stop cleanly, within the bound.
    await Promise.all(
      [a, b].map(async (replica) => {
        if (replica) assert.equal((await replica.stop()).code, 0, replica.output());
      }),
    );
    await registry?.stop();
    await redis?.stop();
  });

  test("a push notified to A is refreshed once, and B's stream shows it once", async () => {
    const onA = await openEvents(a.url);
    const onB = await openEvents(b.url);
    opened.push(onA, onB);
    registry.resetRequests();
    const image = await builder.pushImage(REPO, ["v1"]);
    const isV1 = (e: { data: Record<string, unknown> }) =>
      e.data.tag === "v1" && e.data.digest === image.digest;
    const onBEvent = await onB.next(isV1, 5_000);
    await onA.next(isV1, 5_000);
    assert.equal(onBEvent.type, "new-tag");
    assert.match(onBEvent.id ?? "", /^\d+-\d+$/, "the id is the Redis stream id");
    await until(async () => (await digestOn(b, "v1")) === image.digest, "v1 on B", 5_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const made = countRequests(registry);
    assert.equal(made.tagLists, 0, "no listing across the replicas: the pushed tag alone");
    assert.deepEqual([...made.heads], [["v1", 1]]);
    assert.equal(onA.events.filter(isV1).length, 1, "A's stream has it once");
    assert.equal(onB.events.filter(isV1).length, 1, "B's stream has it once");
  });

  test("a client reconnecting to B with Last-Event-ID gets the events it missed", async () => {
    const first = await openEvents(b.url);
    opened.push(first);
    const before = await builder.pushImage(REPO, ["v2"]);
    const seen = await first.next((e) => e.data.tag === "v2" && e.data.digest === before.digest);
    first.close();
    const missed = [];
    for (const tag of ["v3", "v4"]) {
      await new Promise((r) => setTimeout(r, 400));
      missed.push(await builder.pushImage(REPO, [tag]));
      const digest = missed[missed.length - 1]?.digest;
      await until(async () => (await digestOn(a, tag)) === digest, `${tag} on A`, 5_000);
    }
    const again = await openEvents(b.url, { "last-event-id": seen.id ?? "" });
    opened.push(again);
    for (const [i, tag] of ["v3", "v4"].entries()) {
      const e = await again.next((x) => x.data.tag === tag, 5_000);
      assert.equal(e.data.digest, missed[i]?.digest);
    }
    assert.ok(!again.events.some((e) => e.data.tag === "v2"), "nothing before the id");
    assert.deepEqual(
      again.events.map((e) => e.data.tag),
      ["v3", "v4"],
    );
  });
});
