import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { exportJWK, SignJWT } from "jose";
import { Agent } from "undici";
import { webhooksSchema } from "../../../src/server/webhooks/config.js";
import { WebhookReceivers } from "../../../src/server/webhooks/receivers.js";
import { garNotification, pubSubPush } from "./samples.js";

/**
 * A local OIDC issuer on loopback: it serves a JWKS of keys generated here, and signs push
 * tokens with the claims Pub/Sub sends (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions).
 */
class LocalIssuer {
  readonly server: Server;
  readonly keys = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>();
  published: string[] = [];
  requests = 0;
  /** Milliseconds to wait before answering (to test the deadline). */
  delayMs = 0;
  status = 200;

  constructor() {
    this.server = createServer((_req, res) => {
      this.requests += 1;
      setTimeout(() => {
        void this.#jwks().then((body) => {
          res
            .writeHead(this.status, { "content-type": "application/json" })
            .end(JSON.stringify(body));
        });
      }, this.delayMs);
    });
  }

  async start(): Promise<string> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/oauth2/v3/certs`;
  }

  addKey(kid: string, publish = true): void {
    this.keys.set(kid, generateKeyPairSync("rsa", { modulusLength: 2048 }));
    if (publish) this.published.push(kid);
  }

  async #jwks(): Promise<{ keys: unknown[] }> {
    const keys = [];
    for (const kid of this.published) {
      const pair = this.keys.get(kid);
      if (pair) keys.push({ ...(await exportJWK(pair.publicKey)), kid, alg: "RS256", use: "sig" });
    }
    return { keys };
  }

  sign(
    kid: string,
    claims: Record<string, unknown>,
    opts: { expiresIn?: string; alg?: string } = {},
  ): Promise<string> {
    const pair = this.keys.get(kid);
    if (!pair) throw new Error(`no key ${kid}`);
    return new SignJWT({
      email: SERVICE_ACCOUNT,
      email_verified: true,
      azp: "113774264463038321964",
      sub: "113774264463038321964",
      ...claims,
    })
      .setProtectedHeader({ alg: opts.alg ?? "RS256", kid, typ: "JWT" })
      .setIssuer(typeof claims.iss === "string" ? claims.iss : "https://accounts.google.com")
      .setAudience(typeof claims.aud === "string" ? claims.aud : AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(opts.expiresIn ?? "1h")
      .sign(pair.privateKey);
  }
}

const AUDIENCE = "https://regscan.example.com/v1/webhooks/gar";
const SERVICE_ACCOUNT = "pubsub-push@my-project.iam.gserviceaccount.com";
const body = Buffer.from(JSON.stringify(pubSubPush(garNotification)));

describe("gar receiver: Pub/Sub push OIDC token", () => {
  const issuer = new LocalIssuer();
  let receivers: WebhookReceivers;
  let client = 0;
  const send = (authorization: string | undefined) =>
    receivers.handle({
      kind: "gar",
      rawBody: body,
      remoteAddress: `10.1.0.${++client}`,
      headers: { "content-type": "application/json", authorization },
    });

  before(async () => {
    issuer.addKey("key-1");
    const jwksUrl = await issuer.start();
    receivers = await WebhookReceivers.create(
      webhooksSchema.parse({
        gar: { audience: AUDIENCE, serviceAccount: SERVICE_ACCOUNT, jwksUrl },
      }),
      { jwksTimeoutMs: 500 },
    );
  });
  after(() => {
    issuer.server.closeAllConnections();
    issuer.server.close();
  });

  test("a token from the service account, for our audience -> 202 and the event", async () => {
    const res = await send(`Bearer ${await issuer.sign("key-1", {})}`);
    assert.equal(res.status, 202, JSON.stringify(res));
    assert.deepEqual(
      res.events.map((e) => [e.repository, e.tag]),
      [["us-east1-docker.pkg.dev/my-project/my-repo/hello-world", "1.1"]],
    );
  });

  test("keys are cached: the second token costs no fetch", async () => {
    const before = issuer.requests;
    assert.equal((await send(`Bearer ${await issuer.sign("key-1", {})}`)).status, 202);
    assert.equal(issuer.requests, before);
  });

  test("wrong audience, issuer, account, unverified e-mail, expired, or no token -> 401", async () => {
    const bad = [
      await issuer.sign("key-1", { aud: "https://elsewhere.example.com" }),
      await issuer.sign("key-1", { iss: "https://evil.example.com" }),
      await issuer.sign("key-1", { email: "someone@evil.example.com" }),
      await issuer.sign("key-1", { email_verified: false }),
      await issuer.sign("key-1", {}, { expiresIn: "-5m" }),
    ];
    for (const token of bad) {
      const res = await send(`Bearer ${token}`);
      assert.equal(res.status, 401);
      assert.equal(res.result, "unauthorized");
      assert.deepEqual(res.events, []);
    }
    assert.equal((await send(undefined)).status, 401);
    assert.equal((await send("Bearer not.a.jwt")).status, 401);
  });

  test("a token signed by a key the issuer does not publish -> 401, and refetches are rate-bounded", async () => {
    issuer.addKey("rogue", false);
    const before = issuer.requests;
    for (let i = 0; i < 5; i++) {
      assert.equal((await send(`Bearer ${await issuer.sign("rogue", {})}`)).status, 401);
    }
    assert.ok(issuer.requests - before <= 1, `fetched ${issuer.requests - before} times`);
  });

  test("an HS256 token made with the public key as secret is refused", async () => {
    const pair = issuer.keys.get("key-1");
    assert.ok(pair);
    const secret = pair.publicKey.export({ format: "pem", type: "spki" });
    const forged = await new SignJWT({ email: SERVICE_ACCOUNT, email_verified: true })
      .setProtectedHeader({ alg: "HS256", kid: "key-1" })
      .setIssuer("https://accounts.google.com")
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(Buffer.from(secret));
    assert.equal((await send(`Bearer ${forged}`)).status, 401);
  });
});

describe("gar receiver: key rotation and an issuer that does not answer", () => {
  test("a new key is fetched once its tokens arrive (after the cool-down)", async () => {
    const issuer = new LocalIssuer();
    issuer.addKey("old");
    const jwksUrl = await issuer.start();
    let now = 5_000_000;
    try {
      const receivers = await WebhookReceivers.create(
        webhooksSchema.parse({
          gar: { audience: AUDIENCE, serviceAccount: SERVICE_ACCOUNT, jwksUrl },
        }),
        { now: () => now },
      );
      const send = async (kid: string) =>
        receivers.handle({
          kind: "gar",
          rawBody: body,
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${await issuer.sign(kid, {})}`,
          },
        });
      assert.equal((await send("old")).status, 202);
      issuer.addKey("new");
      now += 60_000;
      assert.equal((await send("new")).status, 202);
      assert.equal(issuer.requests, 2);
    } finally {
      issuer.server.closeAllConnections();
      issuer.server.close();
    }
  });

  test("an issuer slower than the deadline, or failing -> 401 auth_unavailable, not counted", async () => {
    let now = 9_000_000;
    const issuer = new LocalIssuer();
    issuer.addKey("k");
    issuer.delayMs = 2_000;
    const jwksUrl = await issuer.start();
    try {
      const receivers = await WebhookReceivers.create(
        webhooksSchema.parse({
          gar: { audience: AUDIENCE, serviceAccount: SERVICE_ACCOUNT, jwksUrl },
        }),
        { jwksTimeoutMs: 200, authFailures: { burst: 1 }, now: () => now },
      );
      const send = async (token?: string) =>
        receivers.handle({
          kind: "gar",
          rawBody: body,
          remoteAddress: "198.51.100.7",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${token ?? (await issuer.sign("k", {}))}`,
          },
        });
      // Signed before the clock starts: the wait is the receiver's, not the test's signing
      // (which, on a loaded machine, took part of the 1.5 s once).
      const token = await issuer.sign("k", {});
      const started = Date.now();
      const res = await send(token);
      assert.ok(Date.now() - started < 1_500, "the deadline bounds the wait");
      assert.equal(res.status, 401);
      assert.equal(res.result, "auth_unavailable");
      issuer.delayMs = 0;
      issuer.status = 500;
      const fetches = issuer.requests;
      const again = await send();
      assert.equal(
        again.result,
        "auth_unavailable",
        "not rate-limited: the client did nothing wrong",
      );
      assert.equal(issuer.requests, fetches, "no second fetch within the cool-down");
      now += 31_000;
      assert.equal((await send()).result, "auth_unavailable");
      assert.equal(issuer.requests, fetches + 1);
      issuer.status = 200;
      now += 31_000;
      assert.equal((await send()).status, 202);
      // Keys once fetched outlive an outage of the issuer.
      issuer.status = 500;
      now += 2 * 3_600_000;
      assert.equal((await send()).status, 202);
      assert.equal(issuer.requests, fetches + 3, "the old keys were due and were fetched again");
    } finally {
      issuer.server.closeAllConnections();
      issuer.server.close();
    }
  });

  test("keys are fetched through the dispatcher given (here one that resolves a made-up host)", async () => {
    const issuer = new LocalIssuer();
    issuer.addKey("k");
    const local = new URL(await issuer.start());
    const dispatcher = new Agent({
      connect: {
        lookup: (_host, opts, callback) => {
          if ((opts as { all?: boolean }).all) {
            (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
              { address: "127.0.0.1", family: 4 },
            ]);
          } else (callback as (e: null, a: string, f: number) => void)(null, "127.0.0.1", 4);
        },
      },
    });
    try {
      const jwksUrl = `http://issuer.regscan.test:${local.port}${local.pathname}`;
      const receivers = await WebhookReceivers.create(
        webhooksSchema.parse({
          gar: { audience: AUDIENCE, serviceAccount: SERVICE_ACCOUNT, jwksUrl },
        }),
        { dispatcher },
      );
      const res = await receivers.handle({
        kind: "gar",
        rawBody: body,
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${await issuer.sign("k", {})}`,
        },
      });
      assert.equal(res.status, 202);
      assert.equal(issuer.requests, 1);
    } finally {
      await dispatcher.close();
      issuer.server.closeAllConnections();
      issuer.server.close();
    }
  });
});
