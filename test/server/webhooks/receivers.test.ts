import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { request } from "undici";
import { webhooksSchema } from "../../../src/server/webhooks/config.js";
import {
  MAX_WEBHOOK_BODY_BYTES,
  readWebhookBody,
  WebhookReceivers,
  type WebhookRequest,
  type WebhookResponse,
} from "../../../src/server/webhooks/receivers.js";
import { WebhookSecret } from "../../../src/server/webhooks/secret.js";
import * as samples from "./samples.js";

const SECRETS = {
  DIST_TOKEN: "dist-t0ken-Qx81",
  HARBOR_TOKEN: "harb0r-t0ken-Zk2",
  HUB_PATH: "hub-path-s3cret-77",
  GH_KEY: "gh-hmac-k3y-991",
  QUAY_PATH: "quay-path-s3cret-31",
  ACR_TOKEN: "acr-head3r-t0ken",
  ECR_TOKEN: "ecr-api-dest-t0ken",
  GENERIC_TOKEN: "generic-t0ken-55",
};
const env = { ...SECRETS };

const config = webhooksSchema.parse({
  distribution: { secret: "env:DIST_TOKEN" },
  harbor: { secret: "env:HARBOR_TOKEN" },
  dockerhub: { secret: "env:HUB_PATH" },
  github: { secret: "env:GH_KEY" },
  quay: { secret: "env:QUAY_PATH" },
  acr: { secret: "env:ACR_TOKEN", header: "X-Regscan-Token" },
  ecr: { secret: "env:ECR_TOKEN" },
  generic: { secret: "env:GENERIC_TOKEN" },
});

const JSON_TYPE = { "content-type": "application/json" };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const sign = (body: Buffer, key = SECRETS.GH_KEY) =>
  `sha256=${createHmac("sha256", key).update(body).digest("hex")}`;

/** How each kind is sent with valid credentials, and with wrong ones. */
interface Case {
  kind: string;
  sample: unknown;
  contentType?: string | undefined;
  /** The request's credentials for this body. */
  credentials: (body: Buffer) => Pick<WebhookRequest, "headers" | "pathSecret">;
  wrong: (body: Buffer) => Pick<WebhookRequest, "headers" | "pathSecret">;
  none: Pick<WebhookRequest, "headers" | "pathSecret">;
  extraHeaders?: Record<string, string>;
  repository: string;
  tag: string;
}

/** A case for a receiver that takes `Authorization: Bearer <token>`. */
const bearerCase = ({
  kind,
  sample,
  token,
  repository,
  tag,
  contentType,
}: {
  kind: string;
  sample: unknown;
  token: string;
  repository: string;
  tag: string;
  contentType?: string;
}): Case => ({
  kind,
  sample,
  contentType,
  credentials: () => ({ headers: bearer(token) }),
  wrong: () => ({ headers: bearer(`${token}x`) }),
  none: { headers: {} },
  repository,
  tag,
});

/** A case for a receiver that takes its secret in the path. */
const pathCase = ({
  kind,
  sample,
  secret,
  repository,
  tag,
}: {
  kind: string;
  sample: unknown;
  secret: string;
  repository: string;
  tag: string;
}): Case => ({
  kind,
  sample,
  credentials: () => ({ headers: {}, pathSecret: secret }),
  wrong: () => ({ headers: {}, pathSecret: `${secret.slice(0, -1)}X` }),
  none: { headers: {}, pathSecret: "" },
  repository,
  tag,
});

const CASES: Case[] = [
  bearerCase({
    kind: "distribution",
    sample: samples.distributionPush,
    token: SECRETS.DIST_TOKEN,
    repository: "192.168.100.227:5000/hello-world",
    tag: "latest",
    contentType: "application/vnd.docker.distribution.events.v1+json",
  }),
  bearerCase({
    kind: "harbor",
    sample: samples.harborPush,
    token: SECRETS.HARBOR_TOKEN,
    repository: "hub.harbor.com/test-webhook/debian",
    tag: "latest",
  }),
  pathCase({
    kind: "dockerhub",
    sample: samples.dockerHubPush,
    secret: SECRETS.HUB_PATH,
    repository: "svendowideit/testhook",
    tag: "latest",
  }),
  {
    kind: "github",
    sample: samples.githubPackagePublished,
    extraHeaders: { "x-github-event": "package" },
    credentials: (body) => ({ headers: { "x-hub-signature-256": sign(body) } }),
    wrong: (body) => ({ headers: { "x-hub-signature-256": sign(body, "not-the-key") } }),
    none: { headers: {} },
    repository: "ghcr.io/octo-org/app",
    tag: "v1.4.2",
  },
  pathCase({
    kind: "quay",
    sample: samples.quayPush,
    secret: SECRETS.QUAY_PATH,
    repository: "quay.io/dgangaia/test",
    tag: "latest",
  }),
  {
    kind: "acr",
    sample: samples.acrPush,
    credentials: () => ({ headers: { "x-regscan-token": SECRETS.ACR_TOKEN } }),
    wrong: () => ({ headers: { "x-regscan-token": "acr-head3r-t0keN" } }),
    none: { headers: bearer(SECRETS.ACR_TOKEN) },
    repository: "myregistry.azurecr.io/hello-world",
    tag: "v1",
  },
  bearerCase({
    kind: "ecr",
    sample: samples.ecrPush,
    token: SECRETS.ECR_TOKEN,
    repository: "123456789012.dkr.ecr.us-west-2.amazonaws.com/my-repository-name",
    tag: "latest",
  }),
  bearerCase({
    kind: "generic",
    sample: samples.genericPush,
    token: SECRETS.GENERIC_TOKEN,
    repository: "registry.example.com/team/app",
    tag: "v2",
  }),
];

/** The request of case `c` with `body`, sent with `creds` from the address `client`. */
function requestFor({
  c,
  body,
  creds,
  client,
}: {
  c: Case;
  body: Buffer;
  creds: Pick<WebhookRequest, "headers" | "pathSecret">;
  client: string;
}): WebhookRequest {
  return {
    kind: c.kind,
    rawBody: body,
    remoteAddress: client,
    ...creds,
    headers: {
      "content-type": c.contentType ?? "application/json",
      ...c.extraHeaders,
      ...creds.headers,
    },
  };
}

/** Everything a response could show to anyone: searched for secrets. */
const seen: string[] = [];
function record(res: WebhookResponse): WebhookResponse {
  seen.push(JSON.stringify(res));
  return res;
}

describe("webhook receivers", async () => {
  const receivers = await WebhookReceivers.create(config, { env });
  let client = 0;
  // A fresh address per request, so that the failed-auth limit never interferes here.
  const nextClient = () => `10.0.0.${++client}`;

  for (const c of CASES) {
    describe(c.kind, () => {
      const body = Buffer.from(JSON.stringify(c.sample));

      test("sample with valid credentials -> 202 and its events", async () => {
        const res = record(
          await receivers.handle(
            requestFor({ c, body, creds: c.credentials(body), client: nextClient() }),
          ),
        );
        assert.equal(res.status, 202, JSON.stringify(res));
        assert.equal(res.result, "accepted");
        assert.deepEqual(
          res.events.map((e) => [e.repository, e.tag, e.action]),
          [[c.repository, c.tag, "push"]],
        );
      });

      test("wrong or missing credentials -> 401, no events, no detail", async () => {
        for (const creds of [c.wrong(body), c.none]) {
          const res = record(
            await receivers.handle(requestFor({ c, body, creds, client: nextClient() })),
          );
          assert.equal(res.status, 401);
          assert.deepEqual(res.events, []);
          assert.equal(res.message, "unauthorized");
        }
      });

      test("truncated body and invalid JSON -> 400; 2 MiB -> 413; text/plain -> 415", async () => {
        for (const broken of [
          body.subarray(0, Math.floor(body.length / 2)),
          Buffer.from("{not json"),
        ]) {
          const res = record(
            await receivers.handle(
              requestFor({ c, body: broken, creds: c.credentials(broken), client: nextClient() }),
            ),
          );
          assert.equal(res.status, 400, JSON.stringify(res));
          assert.equal(res.code, "INVALID_WEBHOOK_BODY");
          assert.deepEqual(res.events, []);
        }
        const huge = Buffer.alloc(2 * 1024 * 1024, 0x20);
        const big = record(
          await receivers.handle(
            requestFor({ c, body: huge, creds: c.credentials(huge), client: nextClient() }),
          ),
        );
        assert.equal(big.status, 413);
        assert.deepEqual(big.events, []);
        const plain = requestFor({ c, body, creds: c.credentials(body), client: nextClient() });
        const res = record(
          await receivers.handle({
            ...plain,
            headers: { ...plain.headers, "content-type": "text/plain" },
          }),
        );
        assert.equal(res.status, 415);
      });
    });
  }

  test("distribution 3's v2+json envelope and plain JSON are read too", async () => {
    const body = Buffer.from(JSON.stringify(samples.distributionPush));
    for (const type of [
      "application/vnd.docker.distribution.events.v2+json",
      "application/json; charset=utf-8",
    ]) {
      const res = await receivers.handle({
        kind: "distribution",
        rawBody: body,
        remoteAddress: nextClient(),
        headers: { "content-type": type, ...bearer(SECRETS.DIST_TOKEN) },
      });
      assert.equal(res.status, 202, type);
      assert.equal(res.events.length, 1);
    }
  });

  test("GitHub's documented HMAC vector", () => {
    const secret = new WebhookSecret("It's a Secret to Everybody");
    const body = Buffer.from("Hello, World!");
    const signature = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert.equal(secret.signs(body, signature), true);
    assert.equal(secret.signs(body, signature.replace(/7$/, "8")), false);
    assert.equal(secret.signs(Buffer.from("Hello, World?"), signature), false);
    assert.equal(secret.signs(body, "zz"), false);
    assert.equal(secret.signs(body, undefined), false);
  });

  test("a signature over other bytes than those received is refused", async () => {
    const body = Buffer.from(JSON.stringify(samples.githubPackagePublished));
    const tampered = Buffer.from(body.toString().replace("v1.4.2", "v6.6.6"));
    const res = await receivers.handle({
      kind: "github",
      rawBody: tampered,
      remoteAddress: nextClient(),
      headers: { ...JSON_TYPE, "x-github-event": "package", "x-hub-signature-256": sign(body) },
    });
    assert.equal(res.status, 401);
  });

  test("unknown kinds, kinds not turned on and misplaced path secrets -> 404", async () => {
    const off = await WebhookReceivers.create(
      webhooksSchema.parse({ generic: { unauthenticated: true } }),
    );
    const body = Buffer.from(JSON.stringify(samples.genericPush));
    assert.equal((await off.handle({ kind: "nexus", headers: {}, rawBody: body })).status, 404);
    assert.equal((await off.handle({ kind: "harbor", headers: {}, rawBody: body })).status, 404);
    assert.equal(
      (await off.handle({ kind: "generic", headers: {}, rawBody: body, pathSecret: "x" })).status,
      404,
    );
    const open = await off.handle({ kind: "generic", headers: {}, rawBody: body });
    assert.equal(open.status, 202, "an unauthenticated receiver takes anyone's events");
    assert.equal(
      (await receivers.handle({ kind: "dockerhub", headers: JSON_TYPE, rawBody: body })).status,
      404,
    );
  });

  test("failed authentications are counted per client, then 429", async () => {
    let now = 1_000_000;
    const limited = await WebhookReceivers.create(config, {
      env,
      authFailures: { burst: 3, perMinute: 6 },
      now: () => now,
    });
    const body = Buffer.from(JSON.stringify(samples.genericPush));
    const attempt = (token: string, client: string) =>
      limited.handle({
        kind: "generic",
        rawBody: body,
        remoteAddress: client,
        headers: { ...JSON_TYPE, ...bearer(token) },
      });
    for (let i = 0; i < 3; i++) assert.equal((await attempt("guess", "192.0.2.1")).status, 401);
    const blocked = await attempt(SECRETS.GENERIC_TOKEN, "192.0.2.1");
    assert.equal(blocked.status, 429, "even the right token waits once the client is blocked");
    assert.equal(blocked.retryAfterSeconds, 10);
    assert.deepEqual(blocked.events, []);
    assert.equal(
      (await attempt(SECRETS.GENERIC_TOKEN, "192.0.2.2")).status,
      202,
      "another client is not blocked",
    );
    now += 10_000;
    assert.equal(
      (await attempt(SECRETS.GENERIC_TOKEN, "192.0.2.1")).status,
      202,
      "one failure forgiven after 10 s at 6/min",
    );
  });

  test("no secret appears in any response", () => {
    assert.ok(seen.length > 30);
    const all = seen.join("\n");
    for (const secret of Object.values(SECRETS))
      assert.ok(!all.includes(secret), `leaked ${secret.slice(0, 4)}...`);
  });
});

describe("readWebhookBody", () => {
  test("reads a body, and stops past the bound with the connection still able to answer", async () => {
    const server = createServer((req, res) => {
      void readWebhookBody(req).then((body) => {
        const status = body.length > MAX_WEBHOOK_BODY_BYTES ? 413 : 200;
        res.writeHead(status, { connection: "close" }).end(String(body.length));
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const small = await request(url, {
        method: "POST",
        body: "hello",
        signal: AbortSignal.timeout(5_000),
      });
      assert.equal(small.statusCode, 200);
      assert.equal(await small.body.text(), "5");
      // Streamed without a Content-Length, so that the bound is met while reading.
      async function* chunks() {
        for (let i = 0; i < 32; i++) yield Buffer.alloc(65_536, 0x61);
      }
      const big = await request(url, {
        method: "POST",
        body: Readable.from(chunks()),
        signal: AbortSignal.timeout(5_000),
      });
      assert.equal(big.statusCode, 413);
      assert.equal(await big.body.text(), String(MAX_WEBHOOK_BODY_BYTES + 1));
      const declared = await request(url, {
        method: "POST",
        body: Buffer.alloc(MAX_WEBHOOK_BODY_BYTES + 10),
        signal: AbortSignal.timeout(5_000),
      });
      assert.equal(declared.statusCode, 413);
      assert.equal(await declared.body.text(), String(MAX_WEBHOOK_BODY_BYTES + 1));
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
