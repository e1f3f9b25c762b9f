import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openStore } from "../../../src/cache/open-store.js";
import { generateCa, generateServerCert } from "../../support/certs.js";
import { makeTempDir } from "../../support/processes.js";
import { type RedisServer, startRedis } from "../../support/redis.js";
import { uniqueKey } from "./store-contract.js";

let server: RedisServer;
let caFile: string;

before(async () => {
  const dir = makeTempDir("regscan-redis-tls-");
  const ca = generateCa(dir);
  const cert = generateServerCert(dir, ca);
  caFile = ca.certFile;
  server = await startRedis({ tls: { certFile: cert.certFile, keyFile: cert.keyFile, caFile } });
});
after(async () => {
  await server?.stop();
});

test("rediss: talks TLS to a server whose CA is given with ca=", async () => {
  assert.match(server.url, /^rediss:/);
  const store = await openStore(`${server.url}?ca=${encodeURIComponent(caFile)}`);
  try {
    const key = uniqueKey("tls");
    await store.set(key, new Date(Date.now() + 60_000), Buffer.from("over tls"));
    assert.equal(Buffer.from((await store.get(key))!.value).toString(), "over tls");
    await store.ping();
  } finally {
    await store.close();
  }
});

test("rediss: an untrusted server certificate is a typed error, not a hang", async () => {
  const store = await openStore(`${server.url}?timeout=2s`);
  try {
    const started = Date.now();
    await assert.rejects(store.get(uniqueKey("untrusted")), (err: Error & { code?: string }) => {
      assert.ok(["STORE_UNAVAILABLE", "STORE_ERROR"].includes(err.code ?? ""), err.message);
      return true;
    });
    assert.ok(Date.now() - started < 6000);
  } finally {
    await store.close();
  }
});

test("rediss: a ca= file that cannot be read is INVALID_STORE_URL", async () => {
  await assert.rejects(openStore(`${server.url}?ca=${join(caFile, "missing.pem")}`), {
    code: "INVALID_STORE_URL",
    message: /missing\.pem/,
  });
});
