/**
 * What a registry's tag list may contain, with the fault proxy in front of the real
 * registry: tags that break the tag grammar are dropped (logged escaped, counted, never
 * requested), and an answer that is not a tag list (HTML, not JSON, the wrong shape) is
 * INVALID_RESPONSE, not the runaway-listing TAG_LIST_LIMIT.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { pino } from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { openStore } from "../../../src/cache/open-store.js";
import { Warmer } from "../../../src/cache/warmer.js";
import { parseImageName } from "../../../src/image/ref.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../../src/registry/factory.js";
import { escapeTag, isValidTag } from "../../../src/registry/tag-names.js";
import { withFault } from "../../support/faults.js";
import { ImageBuilder } from "../../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../../support/registry.js";

let reg: RegistryHandle;
const factories: RemoteClientFactory[] = [];

before(async () => {
  reg = await startRegistry({ mode: "anonymous" });
  const b = new ImageBuilder(reg);
  await b.pushImage("app", ["v1", "v1.2_rc-3"]);
  await b.close();
});

after(async () => {
  await Promise.all(factories.map((f) => f.close()));
  await reg.stop();
});

/** Tags a hostile registry might list. */
const HOSTILE = [
  "../../../etc/passwd",
  "a b",
  "line\nbreak",
  "nul\u0000byte",
  "\u001b]0;pwned\u0007title",
  "\u001b[31mred",
  "csi\u009b31m",
  "x".repeat(10_000),
  "x".repeat(129),
  ".",
  "..",
  ".hidden",
  "-dash",
  "",
  "ünïcode",
];

function logged() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  return { logger: pino({ level: "warn" }, sink), lines };
}

describe("the tag grammar", () => {
  test("valid tags pass, everything else is refused", () => {
    for (const ok of ["v1", "latest", "1.2.3", "_x", "A-b.c_d", "x".repeat(128), "9"]) {
      assert.ok(isValidTag(ok), ok);
    }
    for (const bad of HOSTILE) assert.equal(isValidTag(bad), false, JSON.stringify(bad));
  });

  test("escaped tags carry no control, escape or non-ASCII character and are short", () => {
    for (const bad of HOSTILE) {
      const shown = escapeTag(bad);
      assert.match(shown, /^[\x20-\x7e…]*$/u, JSON.stringify(shown));
      assert.ok(shown.length < 120, `${shown.length} characters`);
    }
    assert.equal(escapeTag("\u001b]0;t"), "\\u{1b}]0;t");
  });
});

describe("a listing with hostile tags", () => {
  test("they are dropped, logged escaped, counted, and never requested", async () => {
    const { logger, lines } = logged();
    const metrics = new MetricsRegistry();
    const f = new RemoteClientFactory({ insecureHosts: [reg.host], logger, metrics });
    factories.push(f);
    const store = await openStore("memory:", {});
    const warmer = new Warmer({ store, factory: f, burst: 4 });
    reg.resetRequests();
    try {
      await withFault(
        reg,
        (req) =>
          req.path === "/v2/app/tags/list"
            ? { status: 200, body: { name: "app", tags: ["v1", ...HOSTILE, "v1.2_rc-3"] } }
            : undefined,
        async () => {
          const c = f.clientFor(parseImageName(`${reg.host}/app`), Credentials.none());
          assert.deepEqual(await c.tags(), ["v1", "v1.2_rc-3"]);
          const [result] = await warmer.scan([{ name: parseImageName(`${reg.host}/app`) }]);
          assert.equal(result?.tags, 2);
          assert.equal(result?.error, undefined);
        },
      );
    } finally {
      await store.close();
    }
    const manifests = reg.requests().filter((r) => r.path.includes("/manifests/"));
    assert.ok(manifests.length > 0);
    for (const r of manifests) {
      assert.match(r.path, /\/manifests\/(v1|v1\.2_rc-3|sha256:[0-9a-f]{64})$/, r.path);
    }
    const warnings = lines.join("");
    assert.match(warnings, /break the tag grammar/);
    assert.match(warnings, /"dropped":15/);
    // No raw control character reaches the log: JSON would escape \n, but not C1 controls;
    // the escaped form has neither.
    assert.doesNotMatch(warnings, /[\u0080-\u009f]|\\u001b|\\n|\\u0000|passwd.*passwd/);
    assert.match(warnings, /\\\\u\{1b\}\]0;pwned/);
    const counter = await metrics.getSingleMetricAsString("regscan_registry_invalid_tags_total");
    assert.match(counter, new RegExp(`host="${reg.host}"} 30`));
  });
});

describe("answers that are not a tag list", () => {
  const cases: Array<
    [string, { headers?: Record<string, string>; body: string | object }, RegExp]
  > = [
    [
      "HTML",
      { headers: { "content-type": "text/html" }, body: "<html><body>Sign in</body></html>" },
      /tag list is HTML, not JSON \(content-type text\/html\)/,
    ],
    ["not JSON", { body: "tags: v1" }, /tag list is not JSON/],
    ["a JSON array", { body: ["v1"] }, /not a JSON object/],
    ["tags of the wrong type", { body: { name: "app", tags: [1, 2] } }, /array of strings/],
    ["tags not an array", { body: { name: "app", tags: "v1" } }, /array of strings/],
  ];
  for (const [what, answer, message] of cases) {
    test(`${what}: INVALID_RESPONSE naming host and repository`, async () => {
      const f = new RemoteClientFactory({ insecureHosts: [reg.host] });
      factories.push(f);
      await withFault(
        reg,
        (req) => (req.path === "/v2/app/tags/list" ? { status: 200, ...answer } : undefined),
        async () => {
          const c = f.clientFor(parseImageName(`${reg.host}/app`), Credentials.none());
          await assert.rejects(c.tags(), (err: Error & { code?: string }) => {
            assert.equal(err.code, "INVALID_RESPONSE");
            assert.match(err.message, message);
            assert.ok(err.message.includes(`${reg.host}/app`), err.message);
            return true;
          });
        },
      );
    });
  }
});
