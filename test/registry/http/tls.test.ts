/**
 * Insecure hosts and TLS: a host not listed as insecure is never contacted over plain HTTP
 * and a certificate that does not verify is an error; a listed host (with or without its
 * port) works over plain HTTP or unverified TLS; extra CAs from the option and from
 * NODE_EXTRA_CA_CERTS are trusted; token realms on unsafe addresses are refused.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseImageName } from "../../../src/image/ref.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import {
  RemoteClientFactory,
  type RemoteClientFactoryOptions,
} from "../../../src/registry/factory.js";
import { withFault } from "../../support/faults.js";
import { ImageBuilder } from "../../support/image-builder.js";
import { freePort } from "../../support/ports.js";
import { type RegistryHandle, startRegistry } from "../../support/registry.js";

let plain: RegistryHandle;
let secure: RegistryHandle;
const factories: RemoteClientFactory[] = [];

before(async () => {
  [plain, secure] = await Promise.all([
    startRegistry({ mode: "anonymous" }),
    startRegistry({ mode: "anonymous", tls: true }),
  ]);
  for (const reg of [plain, secure]) {
    const b = new ImageBuilder(reg);
    await b.pushImage("app", ["v1"]);
    await b.close();
  }
});

after(async () => {
  await Promise.all(factories.map((f) => f.close()));
  await Promise.all([plain.stop(), secure.stop()]);
});

function tagsOf(reg: RegistryHandle, opts: RemoteClientFactoryOptions): Promise<string[]> {
  const f = new RemoteClientFactory(opts);
  factories.push(f);
  return f.clientFor(parseImageName(`${reg.host}/app`), Credentials.none()).tags();
}

describe("plain HTTP registry", () => {
  test("a host not listed as insecure is never contacted over plain HTTP", async () => {
    plain.resetRequests();
    await assert.rejects(tagsOf(plain, {}), {
      code: "NETWORK",
      message: new RegExp(
        `^TLS handshake failed .*host ${plain.host} seems to speak plain HTTP; use --insecure-host ${plain.host}`,
      ),
    });
    await assert.rejects(tagsOf(plain, { insecureHosts: ["127.0.0.1:1", "localhost"] }), {
      code: "NETWORK",
    });
    assert.deepEqual(plain.requests(), [], "no plain HTTP request reached the registry");
  });

  test("the registry itself (no proxy) answering TLS in plain HTTP: the hint names --insecure-host", async () => {
    const direct = parseImageName(`${plain.directHost}/app`);
    const f = new RemoteClientFactory({});
    factories.push(f);
    await assert.rejects(f.clientFor(direct, Credentials.none()).tags(), {
      code: "NETWORK",
      message: new RegExp(
        `^TLS handshake failed \\(ERR_SSL_\\w+\\): host ${plain.directHost} seems to speak plain HTTP; use --insecure-host ${plain.directHost}`,
      ),
    });
  });

  test("a listed host works over plain HTTP, with or without its port", async () => {
    assert.deepEqual(await tagsOf(plain, { insecureHosts: [plain.host] }), ["v1"]);
    assert.deepEqual(await tagsOf(plain, { insecureHosts: ["127.0.0.1"] }), ["v1"]);
    assert.ok(plain.requests().length > 0);
  });

  test("the HTTPS probe of a plain-HTTP insecure host is made once, not retried", async () => {
    // Retrying the refused TLS handshake cost every new factory over a second of back-off.
    const before = plain.connections().failed;
    assert.deepEqual(await tagsOf(plain, { insecureHosts: [plain.host] }), ["v1"]);
    assert.equal(plain.connections().failed - before, 1, "one failed TLS connection");
  });
});

describe("an insecure host that refuses connections", () => {
  test("one retry sequence of the plain-HTTP ping, then a NETWORK error naming the host", async () => {
    const host = `127.0.0.1:${await freePort()}`;
    const retried: string[] = [];
    // The default retry policy (4 attempts, back-off from 250 ms) with a hook that records.
    const f = new RemoteClientFactory({
      insecureHosts: [host],
      retry: { onRetry: (info) => retried.push(`${info.req.url}`) },
    });
    factories.push(f);
    const started = Date.now();
    await assert.rejects(
      f.clientFor(parseImageName(`${host}/app`), Credentials.none()).tags(),
      (err: Error & { code?: string; host?: string; causeCode?: string }) => {
        assert.equal(err.code, "NETWORK");
        assert.equal(err.host, host);
        assert.equal(err.causeCode, "ECONNREFUSED");
        assert.ok(err.message.includes(host), err.message);
        return true;
      },
    );
    const took = Date.now() - started;
    // The HTTPS look is made once; the plain-HTTP ping's 3 retries are the only ones. Each
    // scheme pinged again afterwards made it 9 retries and over 2.6 s of back-off alone.
    assert.deepEqual(retried, Array(3).fill(`http://${host}/v2/`));
    // Back-off of 0.875-1.75 s, and a loaded machine's lateness.
    assert.ok(took < 2_500, `took ${took} ms`);
  });
});

describe("TLS registry", () => {
  test("a certificate that does not verify is an error", async () => {
    secure.resetRequests();
    await assert.rejects(tagsOf(secure, {}), (err: { code?: string; message: string }) => {
      assert.equal(err.code, "NETWORK");
      assert.match(err.message, /certificate/);
      return true;
    });
    assert.deepEqual(secure.requests(), []);
  });

  test("the CA from caFiles or NODE_EXTRA_CA_CERTS is trusted", async () => {
    assert.ok(secure.caFile);
    assert.deepEqual(await tagsOf(secure, { caFiles: [secure.caFile] }), ["v1"]);
    assert.deepEqual(await tagsOf(secure, { env: { NODE_EXTRA_CA_CERTS: secure.caFile } }), ["v1"]);
  });

  test("a listed host skips verification but still speaks HTTPS", async () => {
    secure.resetRequests();
    assert.deepEqual(await tagsOf(secure, { insecureHosts: [secure.host] }), ["v1"]);
    assert.ok(secure.requests().length > 0);
  });
});

describe("token realms", () => {
  for (const [what, realm] of [
    ["a metadata address", "http://169.254.169.254/latest/token"],
    ["a link-local IPv6 address", "https://[fe80::1]/token"],
    ["plain http to a non-loopback host", "http://10.255.255.1/token"],
  ] as const) {
    test(`${what} is refused before anything is sent`, async () => {
      await withFault(
        plain,
        (req) =>
          req.path === "/v2/"
            ? {
                status: 401,
                headers: { "www-authenticate": `Bearer realm="${realm}",service="x"` },
              }
            : undefined,
        async () => {
          const creds = Credentials.parse(
            "cfg.json",
            JSON.stringify({
              auths: { [plain.host]: { username: "u", password: "pw-not-for-metadata" } },
            }),
          );
          const f = new RemoteClientFactory({
            insecureHosts: [plain.host],
            retry: { maxAttempts: 1 },
          });
          factories.push(f);
          const started = Date.now();
          await assert.rejects(f.clientFor(parseImageName(`${plain.host}/app`), creds).tags(), {
            code: "UNSAFE_REALM",
          });
          assert.ok(Date.now() - started < 5_000);
        },
      );
    });
  }
});
