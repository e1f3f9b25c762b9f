/**
 * Proxies from the environment: with HTTPS_PROXY set, requests to a TLS registry go
 * through the proxy's CONNECT tunnel (TLS still verified end to end); NO_PROXY bypasses it.
 * The proxy is a small CONNECT server of the test's own that records what it tunnels.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { after, before, test } from "node:test";
import { parseImageName } from "../../../src/image/ref.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../../src/registry/factory.js";
import { ImageBuilder } from "../../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../../support/registry.js";

let reg: RegistryHandle;
let proxy: Server;
let proxyUrl: string;
const tunnels: string[] = [];
const factories: RemoteClientFactory[] = [];

before(async () => {
  reg = await startRegistry({ mode: "anonymous", tls: true });
  const b = new ImageBuilder(reg);
  await b.pushImage("app", ["v1"]);
  await b.close();
  proxy = createServer((_req, res) => res.writeHead(405).end());
  proxy.on("connect", (req, socket, head) => {
    tunnels.push(req.url ?? "");
    const [host, port] = (req.url ?? "").split(":");
    const upstream = connect(Number(port), host, () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

after(async () => {
  await Promise.all(factories.map((f) => f.close()));
  proxy.closeAllConnections();
  await new Promise<void>((resolve) => proxy.close(() => resolve()));
  await reg.stop();
});

function tags(env: NodeJS.ProcessEnv): Promise<string[]> {
  assert.ok(reg.caFile);
  const f = new RemoteClientFactory({ caFiles: [reg.caFile], env });
  factories.push(f);
  return f.clientFor(parseImageName(`${reg.host}/app`), Credentials.none()).tags();
}

test("HTTPS_PROXY: requests are tunnelled through the proxy, TLS verified end to end", async () => {
  tunnels.length = 0;
  assert.deepEqual(await tags({ HTTPS_PROXY: proxyUrl }), ["v1"]);
  assert.deepEqual([...new Set(tunnels)], [reg.host]);
});

test("NO_PROXY: the listed host is reached directly", async () => {
  tunnels.length = 0;
  assert.deepEqual(await tags({ HTTPS_PROXY: proxyUrl, NO_PROXY: "127.0.0.1" }), ["v1"]);
  assert.deepEqual(tunnels, []);
});

test("no proxy variables: direct", async () => {
  tunnels.length = 0;
  assert.deepEqual(await tags({}), ["v1"]);
  assert.deepEqual(tunnels, []);
});

test("a CA bundle that cannot be read is a typed error naming the file", async () => {
  const missing = "/nonexistent/regscan-ca.pem";
  const attempt = async () => {
    const f = new RemoteClientFactory({ caFiles: [missing], env: {} });
    factories.push(f);
    return f.clientFor(parseImageName(`${reg.host}/app`), Credentials.none()).tags();
  };
  await assert.rejects(attempt, (err: Error & { code?: string }) => {
    assert.equal(err.code, "CA_FILE_UNREADABLE");
    assert.match(err.message, /\/nonexistent\/regscan-ca\.pem/);
    assert.match(err.message, /ENOENT/);
    return true;
  });
});
