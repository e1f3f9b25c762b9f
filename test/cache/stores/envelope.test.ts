import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { DEFAULT_KEY_PREFIX, Keys } from "../../../src/cache/keys.js";
import {
  decodeEnvelope,
  ENVELOPE_VERSION,
  encodeEnvelope,
  expiryMs,
  MIN_EXPIRY_MS,
} from "../../../src/cache/stores/envelope.js";
import { memcachedKey, serverFor } from "../../../src/cache/stores/memcached-keys.js";
import { parseImageName } from "../../../src/image/ref.js";

test("envelope: every value and deadline round-trips", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 2048 }),
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      (value, ms) => {
        const decoded = decodeEnvelope(encodeEnvelope(new Date(ms), value));
        assert.ok(decoded.ok);
        assert.equal(decoded.envelope.deadline.getTime(), ms);
        assert.deepEqual(decoded.envelope.value, value);
      },
    ),
  );
});

test("envelope: arbitrary bytes never throw; foreign values say why they are not ours", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      decodeEnvelope(bytes);
    }),
  );
  assert.deepEqual(decodeEnvelope(Buffer.from("RSC")), { ok: false, problem: "too short" });
  assert.deepEqual(decodeEnvelope(Buffer.from('{"tags":[]} plus more')), {
    ok: false,
    problem: "bad magic",
  });
  const next = encodeEnvelope(new Date(), Buffer.from("x"));
  next[3] = ENVELOPE_VERSION + 1;
  assert.deepEqual(decodeEnvelope(next), { ok: false, problem: "unknown version" });
  const nan = encodeEnvelope(new Date(), Buffer.from("x"));
  nan.writeDoubleBE(Number.NaN, 4);
  assert.deepEqual(decodeEnvelope(nan), { ok: false, problem: "bad deadline" });
});

test("envelope: an Invalid Date deadline is refused, not encoded as NaN", () => {
  assert.throws(() => encodeEnvelope(new Date(Number.NaN), Buffer.from("x")), {
    code: "INVALID_DEADLINE",
  });
});

test("expiry is twice the time to the deadline, at least an hour", () => {
  const now = 1_000_000;
  assert.equal(expiryMs(new Date(now + 10 * 3600_000), now), 20 * 3600_000);
  assert.equal(expiryMs(new Date(now + 60_000), now), MIN_EXPIRY_MS);
  assert.equal(expiryMs(new Date(now - 60_000), now), MIN_EXPIRY_MS);
});

test("keys: one per repository, one per tag, one lease, all under the prefix", () => {
  const name = parseImageName("localhost:5000/team/app");
  const keys = new Keys();
  assert.equal(keys.repository(name), `${DEFAULT_KEY_PREFIX}repo:localhost:5000/team/app`);
  assert.equal(keys.bucket(name, 7), `${DEFAULT_KEY_PREFIX}idx:localhost:5000/team/app#7`);
  assert.equal(keys.image("sha256:ab"), `${DEFAULT_KEY_PREFIX}img:sha256:ab`);
  // The first layout's tag keys, read once by the scan that upgrades a store.
  assert.equal(keys.tag(name, "v1.2"), "regscan:v1:tag:localhost:5000/team/app:v1.2");
  assert.equal(new Keys("prod:").tag(name, "v1.2"), "prod:tag:localhost:5000/team/app:v1.2");
  assert.equal(keys.lease(name), `${DEFAULT_KEY_PREFIX}lease:localhost:5000/team/app`);
  assert.equal(new Keys("prod:").repository(name), "prod:repo:localhost:5000/team/app");
  // Canonical names: the short and long spellings of a Docker Hub image share a key.
  assert.equal(
    keys.repository(parseImageName("alpine")),
    keys.repository(parseImageName("docker.io/library/alpine")),
  );
});

test("memcached keys: safe keys pass through, others hash to safe ones", () => {
  assert.equal(memcachedKey("regscan:v1:repo:a/b"), "regscan:v1:repo:a/b");
  fc.assert(
    fc.property(fc.string({ maxLength: 400, unit: "binary" }), (key) => {
      const mk = memcachedKey(key);
      assert.ok(Buffer.byteLength(mk) <= 250);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: checking for them
      assert.doesNotMatch(mk, /[\u0000-\u0020\u007f]/);
      assert.equal(memcachedKey(key), mk);
    }),
  );
});

test("memcached servers: the choice ignores list order and moves few keys when one joins", () => {
  const three = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"];
  const four = [...three, "10.0.0.4:11211"];
  let moved = 0;
  for (let i = 0; i < 2000; i++) {
    const key = `k${i}`;
    const where = serverFor(key, three);
    assert.equal(serverFor(key, [...three].reverse()), where);
    const after = serverFor(key, four);
    if (after !== where) {
      moved++;
      assert.equal(after, "10.0.0.4:11211", "keys only move to the new server");
    }
  }
  assert.ok(moved > 300 && moved < 700, `${moved} of 2000 moved (about a quarter expected)`);
});
