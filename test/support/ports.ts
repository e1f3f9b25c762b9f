/**
 * Free loopback ports for the servers tests start. The port is released before the server
 * binds it, so a start can race another process; starters retry on "address in use".
 */
import { createServer } from "node:net";

/** A TCP port on `host` (default 127.0.0.1) that nothing listened on a moment ago. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const addr = server.address();
      if (addr === null || typeof addr === "string") {
        server.close();
        reject(new Error("could not learn the port of a listening socket"));
        return;
      }
      server.close(() => resolve(addr.port));
    });
  });
}
