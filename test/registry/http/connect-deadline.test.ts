/**
 * The request deadline holds while the connection is still being made: a host that accepts
 * TCP connections and never finishes the TLS handshake fails with TIMEOUT at the deadline,
 * not after undici's own 10 s connect timeout; and `regscan tags` exits then too, its socket
 * not left to hold the process.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { parseImageName } from "../../../src/image/ref.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../../src/registry/factory.js";
import { runCli } from "../../support/cli.js";

let silent: Server;
let port: number;
const sockets = new Set<Socket>();

before(async () => {
  // Takes every connection and never says a word: the ClientHello goes unanswered.
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const address = silent.address();
  assert.ok(address !== null && typeof address === "object");
  port = address.port;
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
});

// Both only connect to the silent server (each its own sockets): side by side.
describe("a host that never finishes the TLS handshake", { concurrency: true }, () => {
  test("a TLS handshake that never finishes: TIMEOUT at the request deadline, naming the host", async () => {
    const factory = new RemoteClientFactory({ requestTimeoutMs: 400 });
    try {
      const client = factory.clientFor(parseImageName(`127.0.0.1:${port}/app`), Credentials.none());
      const started = Date.now();
      await assert.rejects(client.tags({ signal: AbortSignal.timeout(30_000) }), (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.equal((err as Error & { code?: string }).code, "TIMEOUT", err.message);
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
        return true;
      });
      const elapsed = Date.now() - started;
      // undici's connect timeout is 10 s; the deadline is 0.4 s (a loaded machine may be late).
      assert.ok(elapsed < 5_000, `failed after ${elapsed} ms`);
    } finally {
      await factory.close();
    }
  });

  test("regscan tags --request-timeout 500ms against that host: the one line, and the process exits", async () => {
    const started = Date.now();
    const r = await runCli(["tags", "--request-timeout", "500ms", `127.0.0.1:${port}/app`], {
      timeoutMs: 30_000,
    });
    const elapsed = Date.now() - started;
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^regscan: ping \\(GET /v2/\\) timed out after 500 ms: 127\\.0\\.0\\.1:${port}\n$`,
      ),
    );
    // Start-up, the 0.5 s deadline and the factory's 1 s close grace, under load;
    // the process stayed until undici's 10 s connect timeout before.
    assert.ok(elapsed < 8_000, `exited after ${elapsed} ms`);
  });
});
