/**
 * A tiny loopback HTTP server for the fake cloud endpoints: a handler per request, the
 * request body read in full, and a `close()` for `after()` hooks.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type FakeHandler = (
  req: IncomingMessage,
  body: string,
  res: ServerResponse,
) => void | Promise<void>;

export interface FakeServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts a server on a free 127.0.0.1 port. */
export async function startFakeServer(handler: FakeHandler): Promise<FakeServer> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      Promise.resolve(handler(req, Buffer.concat(chunks).toString("utf8"), res)).catch(
        (err: unknown) => {
          res.statusCode = 500;
          res.end(String(err));
        },
      );
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A JSON answer of {@link sendJson}. */
export interface JsonAnswer {
  status: number;
  /** Sent as `JSON.stringify(body)`. */
  body: unknown;
  /** Default `application/json`. */
  contentType?: string | undefined;
}

/** Sends a JSON answer. */
export function sendJson(
  res: ServerResponse,
  { status, body, contentType = "application/json" }: JsonAnswer,
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
  res.end(text);
}
