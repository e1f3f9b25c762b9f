import assert from "node:assert/strict";
import { after, test } from "node:test";
import { MIN_EXPIRY_MS } from "../../../src/cache/stores/envelope.js";
import { MemoryStore } from "../../../src/cache/stores/memory.js";
import { capturingLogger, storeContract } from "./store-contract.js";

// Two "clients" of a memory store are the same store: it is not shared across processes.
const { logger, lines } = capturingLogger();
const store = new MemoryStore({ logger });
after(() => store.close());

storeContract(
  "memory",
  () => ({
    a: store,
    b: store,
    logs: lines,
    writeRaw: async (key, bytes) => store.setRaw(key, bytes, 60_000),
    leaseTtlMs: 300,
  }),
  { abortsWhileRunning: false },
);

test("memory: values expire at twice the time to the deadline, at least an hour", async () => {
  let now = 1_000_000;
  const s = new MemoryStore({ now: () => now });
  await s.set("short", new Date(now + 60_000), Buffer.from("a"));
  await s.set("long", new Date(now + 3 * MIN_EXPIRY_MS), Buffer.from("b"));
  now += MIN_EXPIRY_MS - 1;
  assert.ok(await s.get("short"));
  now += 2;
  assert.equal(await s.get("short"), undefined, "an hour is the minimum");
  const [short, long] = await s.getMany(["short", "long"]);
  assert.equal(short, undefined, "getMany keeps the expiry of get");
  assert.equal(Buffer.from(long!.value).toString(), "b");
  assert.ok(await s.get("long"));
  now = 1_000_000 + 6 * MIN_EXPIRY_MS - 1;
  assert.ok(await s.get("long"));
  now += 2;
  assert.equal(await s.get("long"), undefined, "twice the time to the deadline");
  await s.close();
});

test("memory: a closed store rejects with STORE_CLOSED", async () => {
  const s = new MemoryStore();
  await s.close();
  await assert.rejects(s.get("k"), { code: "STORE_CLOSED" });
  await assert.rejects(s.getMany(["k"]), { code: "STORE_CLOSED" });
});
