/**
 * Answers read whole through undici's handler interface (src/registry/http/whole-answer.ts),
 * against a real HTTP server on loopback: bodies within and over their limit, declared or
 * chunked; a HEAD whose Content-Length is a large blob's keeps its connection; an abort while
 * the answer is awaited ends the wait at once.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { Agent } from "undici";
import { dispatchWhole } from "../../../src/registry/http/whole-answer.js";

let server: Server;
let base: URL;
let connections = 0;
const sockets = new Set<Socket>();
const BIG = 10 * 1024 * 1024;

function answer(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? "/";
  if (path === "/blob") {
    // A HEAD of a large blob: its size, no body.
    res.writeHead(200, { "content-length": String(BIG), "docker-content-digest": "sha256:ab" });
    if (req.method === "HEAD") res.end();
    else res.end(Buffer.alloc(BIG));
    return;
  }
  if (path === "/small") {
    res.writeHead(200, { "content-type": "application/json" });
    // Three chunks, no Content-Length (chunked).
    res.write('{"a":');
    setTimeout(() => {
      res.write('"bc"');
      res.end("}");
    }, 5);
    return;
  }
  if (path === "/declared-large") {
    res.writeHead(200, { "content-length": "5000" });
    res.end(Buffer.alloc(5000, 120));
    return;
  }
  if (path === "/chunked-large") {
    res.writeHead(200);
    for (let i = 0; i < 10; i++) res.write(Buffer.alloc(1000, 121));
    res.end();
    return;
  }
  if (path === "/silent") return; // never answers
  res.writeHead(404).end();
}

before(async () => {
  server = createServer(answer);
  server.on("connection", (socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  base = new URL(`http://127.0.0.1:${address.port}`);
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const get = (path: string) => ({
  method: "GET" as const,
  url: new URL(path, base),
  headers: {},
  body: null,
});

describe("answers read whole", () => {
  test("a chunked body within its limit: every byte, in order", async () => {
    const agent = new Agent();
    try {
      const a = await dispatchWhole(agent, get("/small"), 100, AbortSignal.timeout(5_000));
      assert.equal(a.status, 200);
      assert.equal(a.headers["content-type"], "application/json");
      assert.equal(a.body?.toString("utf8"), '{"a":"bc"}');
    } finally {
      await agent.close();
    }
  });

  test("a body over its limit, declared or found while reading: no body, the status kept", async () => {
    const agent = new Agent();
    try {
      for (const path of ["/declared-large", "/chunked-large"]) {
        const a = await dispatchWhole(agent, get(path), 4096, AbortSignal.timeout(5_000));
        assert.equal(a.status, 200, path);
        assert.equal(a.body, undefined, path);
      }
      // Exactly at the limit is within it.
      const at = await dispatchWhole(
        agent,
        get("/declared-large"),
        5000,
        AbortSignal.timeout(5_000),
      );
      assert.equal(at.body?.byteLength, 5000);
    } finally {
      await agent.close();
    }
  });

  test("a HEAD whose Content-Length is a 10 MiB blob's: its headers, and its connection kept", async () => {
    const agent = new Agent();
    try {
      const opened = connections;
      const earlier = new Set(sockets);
      for (let i = 0; i < 10; i++) {
        const a = await dispatchWhole(
          agent,
          { ...get("/blob"), method: "HEAD" },
          1024,
          AbortSignal.timeout(5_000),
        );
        assert.equal(a.status, 200);
        assert.equal(a.headers["docker-content-digest"], "sha256:ab");
        assert.equal(a.body?.byteLength, 0);
      }
      // Aborted as over its limit, each would have closed its connection and opened another.
      const open = [...sockets].filter((socket) => !earlier.has(socket)).length;
      assert.equal(open, connections - opened, "no connection closed");
      assert.ok(connections - opened <= 2, `${connections - opened} connections for 10 HEADs`);
    } finally {
      await agent.close();
    }
  });

  test("an abort while the answer is awaited rejects at once with its reason", async () => {
    const agent = new Agent();
    try {
      const controller = new AbortController();
      const reason = new Error("caller gave up");
      const pending = dispatchWhole(agent, get("/silent"), 100, controller.signal);
      setTimeout(() => controller.abort(reason), 50);
      const started = Date.now();
      await assert.rejects(pending, (err: unknown) => err === reason);
      assert.ok(Date.now() - started < 2_000);
      // Aborted before it starts: rejected without a request.
      const before = connections;
      await assert.rejects(
        dispatchWhole(agent, get("/small"), 100, AbortSignal.abort(reason)),
        (err: unknown) => err === reason,
      );
      assert.equal(connections, before);
    } finally {
      await agent.destroy();
    }
  });
});
