/**
 * The daemon's braked clients (src/daemon/client-factory.ts `brakeClients`): a regular
 * client's registry calls wait while the loop brake holds; a priority client's never do.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LoopBrake } from "../../src/cache/loop-brake.js";
import { brakeClients } from "../../src/daemon/client-factory.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { FakeFactory, fakeRepository } from "../cache/support/fake-registry.js";

const name = parseImageName("registry.test/team/app");

describe("brakeClients", () => {
  it("holds a regular client's calls while the brake holds, never a priority client's", async () => {
    const fake = new FakeFactory(new Map([[name.toString(), fakeRepository(name, 3, 1)]]));
    const brake = new LoopBrake({
      threshold: 0.5,
      windowMs: 5,
      maxHoldMs: 400,
      utilization: () => 1,
    });
    const factory = brakeClients(fake, brake);
    await sleep(10);
    const started = performance.now();
    const regular = factory.clientFor(name, Credentials.none()).tags();
    // Asked together, the priority listing is answered while the regular one waits.
    const priority = await factory.clientFor(name, Credentials.none(), { priority: true }).tags();
    assert.equal(priority.length, 3);
    assert.ok(performance.now() - started < 300);
    assert.equal(fake.counts(name.toString()).tags, 1);
    assert.equal((await regular).length, 3);
    const waited = performance.now() - started;
    assert.ok(waited >= 380 && waited < 3_000, `regular call waited ${waited} ms`);
    assert.equal(fake.counts(name.toString()).tags, 2);
  });

  it("lets a held call go when its scan is raised to priority", async () => {
    const fake = new FakeFactory(new Map([[name.toString(), fakeRepository(name, 3, 1)]]));
    const brake = new LoopBrake({
      threshold: 0.5,
      windowMs: 5,
      maxHoldMs: 60_000,
      utilization: () => 1,
    });
    const raise = new AbortController();
    const client = brakeClients(fake, brake).clientFor(name, Credentials.none(), {
      priority: raise.signal,
    });
    await sleep(10);
    const listing = client.tags();
    await sleep(50);
    assert.equal(fake.counts(name.toString()).tags, 0);
    raise.abort();
    assert.equal((await listing).length, 3);
  });
});
