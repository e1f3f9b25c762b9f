/**
 * Record-write notices on a real Redis: what one replica publishes every replica's API hears,
 * only on its namespace's channel; a dropped connection makes them not live until it is
 * subscribed again, and then every state is forgotten (what was written meanwhile went
 * unheard).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { RedisStore } from "../../src/cache/stores/redis.js";
import {
  publishRecordNotice,
  type RecordNoticeSource,
  recordNoticeChannel,
  redisRecordNotices,
} from "../../src/server/record-notices.js";
import { cleanupAll } from "../support/processes.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";

after(cleanupAll);

const logger = pino({ level: "silent" });
const CHANNEL = recordNoticeChannel("regscan:v2:");

const until = (check: () => boolean, what: string) =>
  waitFor(check, { what, timeoutMs: 10_000, intervalMs: 10 });

describe("record notices on a real Redis", () => {
  let redis: RedisServer;
  let store: RedisStore;
  const sources: RecordNoticeSource[] = [];
  const opened: Array<{ disconnect(): void }> = [];

  const listen = (channel = CHANNEL) => {
    const source = redisRecordNotices(store.duplicateConnection(5_000), channel, logger);
    sources.push(source);
    const heard = { written: [] as string[], resets: 0 };
    source.subscribe({
      written: (name) => heard.written.push(name),
      reset: () => heard.resets++,
    });
    return { source, heard };
  };

  before(async () => {
    redis = await startRedis();
    store = new RedisStore({ nodes: [{ host: redis.host, port: redis.port }], timeoutMs: 2_000 });
  });

  after(async () => {
    for (const s of sources) s.close();
    for (const c of opened) c.disconnect();
    await store?.close();
    await redis?.stop();
  });

  test("every replica hears every replica's writes, on its namespace's channel only", async () => {
    const a = listen();
    const b = listen();
    const other = listen(recordNoticeChannel("staging:regscan:v2:"));
    await until(() => a.source.live() && b.source.live() && other.source.live(), "subscribed");
    assert.equal(a.heard.resets, 1, "told to forget what came before it listened");
    const writer = store.duplicateConnection(5_000);
    writer.on("error", () => {});
    opened.push(writer);
    await publishRecordNotice(writer, CHANNEL, "localhost:5000/team/app", logger);
    await publishRecordNotice(writer, CHANNEL, "localhost:5000/team/web", logger);
    await until(() => a.heard.written.length === 2 && b.heard.written.length === 2, "notices");
    assert.deepEqual(b.heard.written, ["localhost:5000/team/app", "localhost:5000/team/web"]);
    assert.deepEqual(other.heard.written, [], "another namespace's channel hears nothing");
  });

  test("a dropped connection is not live until subscribed again, then every state is forgotten", async () => {
    const a = listen();
    await until(() => a.source.live(), "subscribed");
    const resets = a.heard.resets;
    const admin = store.duplicateConnection(5_000);
    admin.on("error", () => {});
    opened.push(admin);
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    await until(() => !a.source.live(), "not live once the connection dropped");
    await until(() => a.source.live(), "subscribed again");
    assert.equal(a.heard.resets, resets + 1);
    await publishRecordNotice(admin, CHANNEL, "localhost:5000/team/db", logger);
    await until(() => a.heard.written.includes("localhost:5000/team/db"), "heard after it");
  });

  test("a notice that cannot be sent is dropped without a rejection", async () => {
    const writer = store.duplicateConnection(5_000);
    writer.on("error", () => {});
    writer.disconnect();
    await publishRecordNotice(writer, CHANNEL, "localhost:5000/team/app", logger);
  });
});
