/**
 * `expectStatus`, the one status check: expected statuses pass with the body unread; any
 * other becomes the error class the status and the registry's error body say, named with
 * the caller's context.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { HttpResponse } from "../../../src/registry/http/exchange.js";
import { expectStatus } from "../../../src/registry/http/status.js";

function answer(status: number, body = "", headers: Record<string, string> = {}) {
  let read = false;
  const res: HttpResponse = {
    status,
    headers: new Headers(headers),
    url: new URL("https://r.example/v2/app/manifests/v1"),
    body: (async function* () {
      read = true;
      yield Buffer.from(body);
    })(),
  };
  return { res, wasRead: () => read };
}

test("expected statuses (one, a list, a test) pass and leave the body unread", async () => {
  for (const ok of [200, [200, 404], (s: number) => s < 300] as const) {
    const a = answer(200, "{}");
    await expectStatus(a.res, ok, {});
    assert.equal(a.wasRead(), false);
  }
});

test("any other status throws the class its code and status say, with the caller's context", async () => {
  const ctx = { host: "r.example", repository: "app", reference: "v1" };
  const unknown = answer(404, JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN" }] }));
  await assert.rejects(expectStatus(unknown.res, 200, ctx), {
    code: "MANIFEST_UNKNOWN",
    status: 404,
    host: "r.example",
    repository: "app",
    reference: "v1",
  });
  await assert.rejects(expectStatus(answer(429, "", { "retry-after": "7" }).res, [200], ctx), {
    code: "TOO_MANY_REQUESTS",
    retryAfterMs: 7000,
  });
  await assert.rejects(
    expectStatus(answer(503).res, (s) => s < 500, { host: "r.example" }),
    {
      code: "REGISTRY_ERROR",
      status: 503,
    },
  );
  await assert.rejects(expectStatus(answer(403).res, 200, ctx), { code: "DENIED" });
});
