import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { parseImageName } from "../../../src/image/ref.js";
import { webhooksSchema } from "../../../src/server/webhooks/config.js";
import { InvalidWebhookBodyError } from "../../../src/server/webhooks/errors.js";
import { WEBHOOK_KINDS } from "../../../src/server/webhooks/event.js";
import { parseAcr } from "../../../src/server/webhooks/formats/acr.js";
import { parseDistribution } from "../../../src/server/webhooks/formats/distribution.js";
import { parseDockerHub } from "../../../src/server/webhooks/formats/dockerhub.js";
import { parseEcr } from "../../../src/server/webhooks/formats/ecr.js";
import { parseGar } from "../../../src/server/webhooks/formats/gar.js";
import { parseGeneric } from "../../../src/server/webhooks/formats/generic.js";
import { parseGitHub } from "../../../src/server/webhooks/formats/github.js";
import { parseHarbor } from "../../../src/server/webhooks/formats/harbor.js";
import { parseQuay } from "../../../src/server/webhooks/formats/quay.js";
import { WebhookReceivers, type WebhookResponse } from "../../../src/server/webhooks/receivers.js";
import * as samples from "./samples.js";

const STATUSES = new Set([202, 400, 401, 404, 413, 415, 429]);
const TAG = /^[\w][\w.-]{0,127}$/;

const SAMPLES: Record<string, unknown> = {
  distribution: samples.distributionPush,
  harbor: samples.harborPush,
  dockerhub: samples.dockerHubPush,
  github: samples.githubPackagePublished,
  quay: samples.quayPush,
  acr: samples.acrPush,
  gar: samples.pubSubPush(samples.garNotification),
  ecr: samples.ecrPush,
  generic: [samples.genericPush],
};

function checkResponse(res: WebhookResponse): void {
  assert.ok(STATUSES.has(res.status), `status ${res.status}`);
  if (res.status !== 202) assert.deepEqual(res.events, []);
  for (const event of res.events) {
    assert.doesNotThrow(() => parseImageName(event.repository), event.repository);
    if (event.tag !== undefined) assert.match(event.tag, TAG);
    assert.ok(event.action === "push" || event.action === "delete");
    if (event.timestamp !== undefined) assert.ok(Number.isFinite(event.timestamp.getTime()));
  }
}

/** Replaces the value at one path of `value` by `replacement`. */
function mutate(value: unknown, path: number[], replacement: unknown): unknown {
  if (path.length === 0 || typeof value !== "object" || value === null) return replacement;
  const keys = Object.keys(value);
  if (keys.length === 0) return replacement;
  const key = keys[(path[0] ?? 0) % keys.length] as string;
  const copy: Record<string, unknown> = Array.isArray(value)
    ? ([...value] as unknown as Record<string, unknown>)
    : { ...value };
  copy[key] = mutate((value as Record<string, unknown>)[key], path.slice(1), replacement);
  return copy;
}

const headerArb = fc.dictionary(
  fc.constantFrom(
    "content-type",
    "authorization",
    "x-github-event",
    "x-hub-signature-256",
    "x-regscan-token",
    "x-other",
  ),
  fc.oneof(fc.string({ maxLength: 200 }), fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 })),
);

describe("webhook receivers never throw and never answer 5xx", async () => {
  // Authenticated receivers: garbage meets the credential checks.
  const locked = await WebhookReceivers.create(
    webhooksSchema.parse({
      distribution: { secret: "env:T" },
      harbor: { secret: "env:T" },
      dockerhub: { secret: "env:T" },
      github: { secret: "env:T" },
      quay: { secret: "env:T" },
      acr: { secret: "env:T", header: "X-Regscan-Token" },
      // The JWKS URL answers nothing (port 9 on loopback): a token must fail quickly.
      gar: { audience: "a", serviceAccount: "s@x", jwksUrl: "http://127.0.0.1:9/certs" },
      ecr: { secret: "env:T" },
      generic: { secret: "env:T" },
    }),
    { env: { T: "t0ken" }, jwksTimeoutMs: 200, authFailures: { burst: 1_000_000 } },
  );
  // Unauthenticated receivers: garbage reaches every parser.
  const open = await WebhookReceivers.create(
    webhooksSchema.parse(
      Object.fromEntries(WEBHOOK_KINDS.map((k) => [k, { unauthenticated: true }])),
    ),
  );

  test("arbitrary bytes, headers, kinds and path secrets", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(...WEBHOOK_KINDS), fc.string({ maxLength: 12 })),
        headerArb,
        fc.oneof(
          fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
          fc.json().map((j) => Buffer.from(j)),
        ),
        fc.option(fc.string({ maxLength: 64 }), { nil: undefined }),
        fc.boolean(),
        async (kind, headers, rawBody, pathSecret, authenticated) => {
          const receivers = authenticated ? locked : open;
          const res = await receivers.handle({
            kind,
            headers,
            rawBody,
            remoteAddress: "203.0.113.9",
            pathSecret,
          });
          checkResponse(res);
        },
      ),
      { numRuns: 400 },
    );
  });

  test("each sample with one field replaced by any JSON value", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...WEBHOOK_KINDS),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.jsonValue(),
        async (kind, path, replacement) => {
          const body = mutate(SAMPLES[kind], path, replacement);
          const res = await open.handle({
            kind,
            rawBody: Buffer.from(JSON.stringify(body) ?? "null"),
            headers: { "content-type": "application/json", "x-github-event": "package" },
          });
          checkResponse(res);
        },
      ),
      { numRuns: 600 },
    );
  });

  test("tags and repositories the grammar refuses never come out as events", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 300 }),
        fc.string({ maxLength: 140 }),
        async (repository, tag) => {
          const res = await open.handle({
            kind: "generic",
            rawBody: Buffer.from(JSON.stringify({ repository, tag })),
            headers: { "content-type": "application/json" },
          });
          checkResponse(res);
          if (!TAG.test(tag) && tag !== "") assert.equal(res.status, 400);
        },
      ),
      { numRuns: 400 },
    );
  });

  test("a deeply nested body is a 400, not a stack overflow", async () => {
    for (const rawBody of [
      Buffer.from("[".repeat(1_000_000)),
      Buffer.from(`${"[".repeat(200_000)}${"]".repeat(200_000)}`),
    ]) {
      const res = await open.handle({ kind: "generic", rawBody, headers: {} });
      assert.equal(res.status, 400);
    }
  });
});

describe("parsers throw nothing but InvalidWebhookBodyError", () => {
  const parsers = [
    parseDistribution,
    parseHarbor,
    parseDockerHub,
    (text: string) => parseGitHub(text, { "x-github-event": "package" }),
    parseQuay,
    parseAcr,
    parseGar,
    parseEcr,
    parseGeneric,
  ];
  test("any JSON text and any string", () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), fc.nat(parsers.length - 1), (text, i) => {
        try {
          (parsers[i] as (t: string) => unknown)(text);
        } catch (err) {
          assert.ok(err instanceof InvalidWebhookBodyError, String(err));
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
