/**
 * Blob redirects: the token-mode registry (through the recording proxy) sends the config
 * blob to a second loopback server, as registries do with storage; that server must get
 * no Authorization header or any other credential, while the registry did get one.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import pino from "pino";
import { parseImageName } from "../../../src/image/ref.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../../src/registry/factory.js";
import type { HttpRequest, HttpResponse } from "../../../src/registry/http/exchange.js";
import { followRedirects } from "../../../src/registry/http/redirects.js";
import { withFault } from "../../support/faults.js";
import { ImageBuilder, type PushedImage } from "../../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../../support/registry.js";

let reg: RegistryHandle;
let image: PushedImage;
let storage: Server;
let storageHost: string;
const storageSeen: { url: string; headers: IncomingHttpHeaders }[] = [];
const factories: RemoteClientFactory[] = [];

before(async () => {
  reg = await startRegistry({ mode: "token" });
  const b = new ImageBuilder(reg);
  image = await b.pushImage("app", ["v1"]);
  await b.close();
  storage = createServer((req, res) => {
    storageSeen.push({ url: req.url ?? "", headers: req.headers });
    if (req.url?.startsWith("/loop")) {
      res.writeHead(302, { location: "/loop" }).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(image.config.bytes);
  });
  await new Promise<void>((resolve) => storage.listen(0, "127.0.0.1", resolve));
  storageHost = `127.0.0.1:${(storage.address() as AddressInfo).port}`;
});

after(async () => {
  await Promise.all(factories.map((f) => f.close()));
  await new Promise<void>((resolve) => storage.close(() => resolve()));
  await reg.stop();
});

function creds(): Credentials {
  const [user, pass] = Object.entries(reg.users)[0] ?? [];
  return Credentials.parse(
    "cfg.json",
    JSON.stringify({ auths: { [reg.host]: { username: user, password: pass } } }),
  );
}

test("a blob redirected to another host is fetched there without any credential", async () => {
  const lines: string[] = [];
  const logger = pino(
    { level: "info" },
    new Writable({
      write(chunk, _e, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  const f = new RemoteClientFactory({ insecureHosts: [reg.host], trace: true, logger });
  factories.push(f);
  await withFault(
    reg,
    (req) =>
      req.path === `/v2/app/blobs/${image.config.digest}`
        ? {
            status: 307,
            headers: {
              location: `http://${storageHost}/blobs/${image.config.digest}?X-Amz-Signature=s3cr3tsig&X-Amz-Credential=AKIAXX`,
            },
          }
        : undefined,
    async () => {
      reg.resetRequests();
      storageSeen.length = 0;
      const entry = await f.clientFor(parseImageName(`${reg.host}/app`), creds()).manifest("v1");
      assert.equal(entry.info?.imageID, image.config.digest);
      assert.equal(storageSeen.length, 1, "the storage server was asked once");
      const seen = storageSeen[0];
      assert.ok(seen);
      assert.equal(seen.headers.authorization, undefined, "no Authorization at the storage host");
      assert.equal(seen.headers.cookie, undefined);
      assert.equal(seen.headers["proxy-authorization"], undefined);
      const blobAtRegistry = reg
        .requests()
        .find((r) => r.path === `/v2/app/blobs/${image.config.digest}`);
      assert.equal(
        blobAtRegistry?.hasAuthorization,
        true,
        "the registry itself did get credentials",
      );
      const logged = lines.join("");
      assert.ok(!logged.includes("s3cr3tsig"), "presigned query values are not logged");
      assert.ok(logged.includes(storageHost), "the hop is traced");
    },
  );
});

test("redirects are bounded", async () => {
  const f = new RemoteClientFactory({ insecureHosts: [reg.host] });
  factories.push(f);
  await withFault(
    reg,
    (req) =>
      req.path === `/v2/app/blobs/${image.config.digest}`
        ? { status: 302, headers: { location: `http://${storageHost}/loop` } }
        : undefined,
    async () => {
      await assert.rejects(f.clientFor(parseImageName(`${reg.host}/app`), creds()).manifest("v1"), {
        code: "REGISTRY_ERROR",
        message: /more than 5 redirects/,
      });
    },
  );
});

test("a redirected blob is still verified against its digest", async () => {
  const f = new RemoteClientFactory({ insecureHosts: [reg.host] });
  factories.push(f);
  const other = `sha256:${"0".repeat(64)}`;
  const original = image.config.bytes;
  image = { ...image, config: { ...image.config, bytes: Buffer.from('{"tampered":true}') } };
  try {
    await withFault(
      reg,
      (req) =>
        req.path === `/v2/app/blobs/${image.config.digest}`
          ? { status: 307, headers: { location: `http://${storageHost}/blobs/${other}` } }
          : undefined,
      async () => {
        await assert.rejects(
          f.clientFor(parseImageName(`${reg.host}/app`), creds()).manifest("v1"),
          {
            code: "DIGEST_MISMATCH",
          },
        );
      },
    );
  } finally {
    image = { ...image, config: { ...image.config, bytes: original } };
  }
});

test("the method of a redirected request: 303 turns into GET, 307 and 308 keep it and the body", async () => {
  const sent: HttpRequest[] = [];
  const answer = (status: number, location?: string): HttpResponse => ({
    status,
    headers: new Headers(location ? { location } : {}),
    url: new URL("https://r.example/"),
    body: (async function* () {})(),
  });
  const hop = (status: number) => async (req: HttpRequest) => {
    sent.push(req);
    return sent.length === 1 ? answer(status, "/next") : answer(200);
  };
  const post: HttpRequest = {
    method: "POST",
    url: new URL("https://r.example/token"),
    headers: { authorization: "Basic c2VjcmV0" },
    body: "grant_type=password",
  };
  for (const [status, method, body] of [
    [303, "GET", undefined],
    [302, "GET", undefined],
    [307, "POST", "grant_type=password"],
    [308, "POST", "grant_type=password"],
  ] as const) {
    sent.length = 0;
    const t = hop(status);
    const res = await followRedirects(post, { registry: t, elsewhere: t, isInsecure: () => false });
    assert.equal(res.status, 200);
    assert.equal(sent[1]?.method, method, `after ${status}`);
    assert.equal(sent[1]?.body, body, `after ${status}`);
    assert.equal(sent[1]?.url.href, "https://r.example/next");
  }
});
