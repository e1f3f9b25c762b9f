/**
 * Answers shared through the store (src/server/shared-answers.ts): served back only for the
 * version, variant and age they were written for; a value that is not one (foreign bytes,
 * a bad header, a gzip cut short, changed, or longer than it says) is a logged, counted miss; a store
 * that fails costs a build, never the answer.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { crc32, gunzipSync, gzipSync } from "node:zlib";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { Keys } from "../../src/cache/keys.js";
import type { Store } from "../../src/cache/store.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { parseImageName } from "../../src/image/ref.js";
import { MAX_SHARED_ANSWER_BYTES, SharedAnswers } from "../../src/server/shared-answers.js";

const NAME = parseImageName("registry.example/team/app");
const TEXT = [
  Buffer.from('{"name":"registry.example/team/app","tags":["v1"],'),
  Buffer.from('"images":{"v1":{"ref":"registry.example/team/app:v1"}}}\n'),
];
const WHOLE = Buffer.concat(TEXT).toString();

function logged(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

function setUp(opts: { store?: Store; variant?: string; now?: () => number } = {}) {
  const store = opts.store ?? new MemoryStore();
  const metrics = new MetricsRegistry();
  const { logger, lines } = logged();
  const shared = new SharedAnswers({
    store,
    variant: opts.variant ?? "labels-a",
    metrics,
    logger,
    now: opts.now,
  });
  const results = async () => {
    const got = await metrics.getSingleMetric("regscan_api_shared_answers_total")?.get();
    return Object.fromEntries((got?.values ?? []).map((v) => [v.labels.result, v.value]));
  };
  return { store, shared, lines, results };
}

const signal = () => AbortSignal.timeout(5_000);

describe("shared answers", () => {
  test("an answer written is read back for its version, and only for it", async () => {
    const { shared, results, store } = setUp();
    assert.equal(await shared.read(NAME, "v-1", signal()), undefined, "nothing yet");
    const written = await shared.write(NAME, "v-1", TEXT, Date.now(), signal());
    assert.equal(written && gunzipSync(written.gzip).toString(), WHOLE, "the gzip written");
    assert.equal(written?.bytes, Buffer.byteLength(WHOLE));
    const got = await shared.read(NAME, "v-1", signal());
    assert.equal(got && gunzipSync(got.gzip.gzip).toString(), WHOLE);
    assert.equal(got?.gzip.bytes, Buffer.byteLength(WHOLE));
    assert.equal(await shared.read(NAME, "v-2", signal()), undefined, "another version");
    // Stored compressed, under the repository's answer key.
    const raw = await store.get(new Keys().answer(NAME));
    assert.ok(raw !== undefined);
    assert.ok(!Buffer.from(raw.value).includes("registry.example/team/app:v1"));
    assert.deepEqual(await results(), { miss: 1, written: 1, hit: 1, stale: 1 });
  });

  test("a replica configured otherwise (another variant) never serves it", async () => {
    const store = new MemoryStore();
    const a = setUp({ store, variant: "labels-a" });
    const b = setUp({ store, variant: "labels-b" });
    await a.shared.write(NAME, "v-1", TEXT, Date.now(), signal());
    assert.equal(await b.shared.read(NAME, "v-1", signal()), undefined);
    assert.ok(await a.shared.read(NAME, "v-1", signal()));
  });

  test("an answer is not served past its maximum age, and says when it was built", async () => {
    let now = 1_000_000;
    const { shared } = setUp({ now: () => now });
    await shared.write(NAME, "v-1", TEXT, now, signal());
    now += 59_999;
    assert.equal((await shared.read(NAME, "v-1", signal()))?.builtAt, 1_000_000);
    now += 1;
    assert.equal(await shared.read(NAME, "v-1", signal()), undefined);
  });

  test("the store keeps an answer two minutes (twice its age limit), not the records' hour", async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ now: () => now });
    const { shared } = setUp({ store, now: () => now });
    await shared.write(NAME, "v-1", TEXT, now, signal());
    const key = new Keys().answer(NAME);
    now += 119_999;
    assert.ok(await store.get(key));
    now += 2;
    assert.equal(await store.get(key), undefined);
  });

  test("an answer over the bound is not written", async () => {
    const { shared, store } = setUp();
    const big = [Buffer.alloc(MAX_SHARED_ANSWER_BYTES + 1, 0x20)];
    await shared.write(NAME, "v-1", big, Date.now(), signal());
    assert.equal(await store.get(new Keys().answer(NAME)), undefined);
  });

  test("a value that is not an answer is a counted, logged miss naming the key", async () => {
    const key = new Keys().answer(NAME);
    const head = (h: unknown) => {
      const json = Buffer.from(JSON.stringify(h));
      const size = Buffer.alloc(4);
      size.writeUInt32BE(json.length);
      return Buffer.concat([Buffer.from("RSA2"), size, json]);
    };
    const zipped = gzipSync(WHOLE);
    const good = {
      version: "v-1",
      variant: "labels-a",
      builtAt: Date.now(),
      bytes: WHOLE.length,
      crc: crc32(zipped),
    };
    const changed = Buffer.from(zipped);
    changed[12] = (changed[12] as number) ^ 0x40;
    const cut = zipped.subarray(0, zipped.length - 9);
    const cases: Array<[string, Buffer]> = [
      ["foreign bytes", Buffer.from("not an answer at all")],
      [
        "the format before (RSA1)",
        Buffer.concat([Buffer.from("RSA1"), head(good).subarray(4), zipped]),
      ],
      ["a header running past the value", Buffer.from([...Buffer.from("RSA2"), 0, 0, 9, 9, 123])],
      [
        "a header that is not JSON",
        Buffer.concat([Buffer.from("RSA2"), Buffer.from([0, 0, 0, 2]), Buffer.from("{x")]),
      ],
      ["a header without a length", head({ ...good, bytes: "many" })],
      ["a header without a CRC-32", head({ ...good, crc: undefined })],
      ["a body that is not gzip", Buffer.concat([head(good), Buffer.from(WHOLE)])],
      ["a gzip cut short", Buffer.concat([head(good), cut])],
      [
        "a gzip cut short, its CRC-32 too",
        Buffer.concat([head({ ...good, crc: crc32(cut) }), cut]),
      ],
      ["a gzip with a byte changed", Buffer.concat([head(good), changed])],
      ["a gzip longer than its header says", Buffer.concat([head({ ...good, bytes: 10 }), zipped])],
      [
        "a gzip shorter than its header says",
        Buffer.concat([head({ ...good, bytes: WHOLE.length + 5 }), zipped]),
      ],
    ];
    // The fixture itself is an answer: only what each case changed makes it one no more.
    {
      const { shared, store } = setUp();
      await store.set(key, new Date(Date.now() + 60_000), Buffer.concat([head(good), zipped]));
      assert.ok(await shared.read(NAME, "v-1", signal()), "the unchanged fixture");
    }
    for (const [what, value] of cases) {
      const { shared, store, lines, results } = setUp();
      await store.set(key, new Date(Date.now() + 60_000), value);
      assert.equal(await shared.read(NAME, "v-1", signal()), undefined, what);
      assert.deepEqual(await results(), { corrupt: 1 }, what);
      const warning = lines.find((l) => l.level === 40);
      assert.equal(warning?.key, key, what);
      assert.equal(warning?.repository, NAME.toString(), what);
      assert.equal(typeof warning?.reason, "string", what);
      // The build's write replaces it.
      await shared.write(NAME, "v-1", TEXT, Date.now(), signal());
      assert.ok(await shared.read(NAME, "v-1", signal()), what);
    }
  });

  test("a failing store costs a build, never an error", async () => {
    const failing = new MemoryStore();
    failing.get = async () => {
      throw new Error("connection refused");
    };
    failing.set = async () => {
      throw new Error("connection refused");
    };
    const { shared, results } = setUp({ store: failing });
    assert.equal(await shared.read(NAME, "v-1", signal()), undefined);
    await shared.write(NAME, "v-1", TEXT, Date.now(), signal());
    assert.deepEqual(await results(), { error: 1, write_error: 1 });
  });
});
