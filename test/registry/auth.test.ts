/**
 * Authentication against the real registry and the harness token server: Basic for an
 * htpasswd registry, Bearer tokens anonymous or with Basic credentials at the realm, the
 * OAuth2 POST form with an identity token (refresh_token grant) or when the realm refuses
 * the GET (password grant), the 60 s default life, and wrong credentials.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import {
  RemoteClientFactory,
  type RemoteClientFactoryOptions,
} from "../../src/registry/factory.js";
import { withFault } from "../support/faults.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";

let token: RegistryHandle;
let basic: RegistryHandle;
const factories: RemoteClientFactory[] = [];

before(async () => {
  [token, basic] = await Promise.all([
    startRegistry({ mode: "token", anonymousPull: true }),
    startRegistry({ mode: "htpasswd" }),
  ]);
  for (const reg of [token, basic]) {
    const b = new ImageBuilder(reg);
    await b.pushImage("app", ["v1"]);
    await b.close();
  }
});

after(async () => {
  await Promise.all(factories.map((f) => f.close()));
  await Promise.all([token.stop(), basic.stop()]);
});

function factory(reg: RegistryHandle, opts: RemoteClientFactoryOptions = {}): RemoteClientFactory {
  const f = new RemoteClientFactory({ insecureHosts: [reg.host], ...opts });
  factories.push(f);
  return f;
}

function user(reg: RegistryHandle): [string, string] {
  const first = Object.entries(reg.users)[0];
  if (!first) throw new Error("registry has no users");
  return first;
}

function config(reg: RegistryHandle, entry: Record<string, string>): Credentials {
  return Credentials.parse("config.json", JSON.stringify({ auths: { [reg.host]: entry } }));
}

const tokenRequests = () => token.tokenServer?.requests() ?? [];

describe("token registry", () => {
  test("anonymous: a token without credentials", async () => {
    token.tokenServer?.resetRequests();
    const tags = await factory(token)
      .clientFor(parseImageName(`${token.host}/app`), Credentials.none())
      .tags();
    assert.deepEqual(tags, ["v1"]);
    const [req] = tokenRequests();
    assert.equal(req?.method, "GET");
    assert.equal(req?.hasAuthorization, false);
    assert.deepEqual(req?.scopes, ["repository:app:pull"]);
    assert.equal(req?.service, token.service);
  });

  test("with a password: Basic credentials at the realm", async () => {
    token.tokenServer?.resetRequests();
    const [u, p] = user(token);
    await factory(token)
      .clientFor(parseImageName(`${token.host}/app`), config(token, { username: u, password: p }))
      .tags();
    const [req] = tokenRequests();
    assert.equal(req?.method, "GET");
    assert.equal(req?.username, u);
  });

  test("with an identity token: the OAuth2 POST form with grant_type=refresh_token", async () => {
    const [u, p] = user(token);
    const res = await fetch(
      `${token.tokenServer?.realm}?service=${token.service}&scope=repository:app:pull&offline_token=true`,
      {
        headers: { authorization: `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}` },
      },
    );
    const refresh = ((await res.json()) as { refresh_token?: string }).refresh_token;
    assert.ok(refresh, "the token server gave a refresh token");
    token.tokenServer?.resetRequests();
    const creds = config(token, { identitytoken: refresh });
    assert.deepEqual(
      await factory(token)
        .clientFor(parseImageName(`${token.host}/app`), creds)
        .tags(),
      ["v1"],
    );
    const [req] = tokenRequests();
    assert.equal(req?.method, "POST");
    assert.equal(req?.grantType, "refresh_token");
    assert.equal(req?.username, u);
    assert.equal(req?.form.get("client_id"), "regscan");
  });

  test("a realm that refuses the GET: the OAuth2 password grant", async () => {
    token.tokenServer?.setGetDisabled(true);
    try {
      token.tokenServer?.resetRequests();
      const [u, p] = user(token);
      const creds = config(token, { username: u, password: p });
      assert.deepEqual(
        await factory(token)
          .clientFor(parseImageName(`${token.host}/app`), creds)
          .tags(),
        ["v1"],
      );
      const post = tokenRequests().find((r) => r.method === "POST");
      assert.equal(post?.grantType, "password");
      assert.equal(post?.status, 200);
    } finally {
      token.tokenServer?.setGetDisabled(false);
    }
  });

  test("no expires_in: the token lives 60 s (less a margin)", async () => {
    token.tokenServer?.setOmitExpiresIn(true);
    try {
      let now = Date.now();
      const client = factory(token, { now: () => now }).clientFor(
        parseImageName(`${token.host}/app`),
        Credentials.none(),
      );
      token.tokenServer?.resetRequests();
      await client.tags();
      now += 50_000;
      await client.tags();
      assert.equal(tokenRequests().length, 1, "still cached after 50 s");
      now += 11_000;
      await client.tags();
      assert.equal(tokenRequests().length, 2, "fetched again after 61 s");
    } finally {
      token.tokenServer?.setOmitExpiresIn(false);
    }
  });

  test("a wrong password: UNAUTHORIZED, without the password in the message", async () => {
    const [u] = user(token);
    const creds = config(token, { username: u, password: "not-the-password-42" });
    await assert.rejects(
      factory(token)
        .clientFor(parseImageName(`${token.host}/app`), creds)
        .tags(),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "UNAUTHORIZED");
        assert.ok(!err.message.includes("not-the-password-42"));
        return true;
      },
    );
  });
});

describe("token registry, unusual answers", () => {
  test("a ping that asks for nothing, then a repository that does: the 401's challenge is learnt", async () => {
    await withFault(
      token,
      (req) => (req.path === "/v2/" ? { status: 200, body: {} } : undefined),
      async () => {
        token.tokenServer?.resetRequests();
        token.resetRequests();
        const client = factory(token).clientFor(
          parseImageName(`${token.host}/app`),
          Credentials.none(),
        );
        assert.deepEqual(await client.tags(), ["v1"]);
        await client.head("v1");
        assert.equal(tokenRequests().length, 1);
        const unauthorized = token.requests().filter((r) => r.status === 401);
        assert.equal(unauthorized.length, 1, "only the first request went without a token");
      },
    );
  });

  test("a ping refused with 429 is not remembered as asking for nothing", async () => {
    let pings = 0;
    await withFault(
      token,
      (req) =>
        req.path === "/v2/" && pings++ === 0
          ? {
              status: 429,
              headers: { "retry-after": "0" },
              body: { errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] },
            }
          : undefined,
      async () => {
        token.resetRequests();
        const f = factory(token, { retry: { maxAttempts: 1 } });
        const name = parseImageName(`${token.host}/app`);
        await assert.rejects(f.clientFor(name, Credentials.none()).tags(), {
          code: "TOO_MANY_REQUESTS",
        });
        assert.deepEqual(await f.clientFor(name, Credentials.none()).tags(), ["v1"]);
        assert.deepEqual(await f.clientFor(name, Credentials.none()).tags(), ["v1"]);
        const unauthorized = token.requests().filter((r) => r.status === 401 && r.path !== "/v2/");
        assert.equal(unauthorized.length, 0, "every client sent its token from the start");
        assert.equal(pings, 2, "pinged again after the refused ping, then remembered");
      },
    );
  });

  test("a registry token (docker's registrytoken) is sent as it is", async () => {
    const [u, p] = user(token);
    const res = await fetch(
      `${token.tokenServer?.realm}?service=${token.service}&scope=repository:app:pull`,
      {
        headers: { authorization: `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}` },
      },
    );
    const issued = ((await res.json()) as { token: string }).token;
    token.tokenServer?.resetRequests();
    const creds = config(token, { registrytoken: issued });
    assert.deepEqual(
      await factory(token)
        .clientFor(parseImageName(`${token.host}/app`), creds)
        .tags(),
      ["v1"],
    );
    assert.equal(tokenRequests().length, 0, "the token server was not asked");
  });
});

describe("htpasswd registry", () => {
  test("Basic auth when the registry asks for Basic", async () => {
    const [u, p] = user(basic);
    basic.resetRequests();
    const client = factory(basic).clientFor(
      parseImageName(`${basic.host}/app`),
      config(basic, { username: u, password: p }),
    );
    assert.deepEqual(await client.tags(), ["v1"]);
    const list = basic.requests().find((r) => r.path === "/v2/app/tags/list");
    assert.equal(list?.authScheme?.toLowerCase(), "basic");
    assert.equal(list?.status, 200);
  });

  test("without credentials: UNAUTHORIZED with status and host", async () => {
    await assert.rejects(
      factory(basic)
        .clientFor(parseImageName(`${basic.host}/app`), Credentials.none())
        .tags(),
      {
        code: "UNAUTHORIZED",
        status: 401,
        host: basic.host,
      },
    );
  });
});
