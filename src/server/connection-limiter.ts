/**
 * Caps the API's open connections in total and per client address, so that slow or idle
 * clients cannot take every file descriptor the process has and leave the warmer none for
 * its registry connections. Connections over a cap are closed as soon as they are accepted.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";

/** The caps (each at least 1). */
export interface ConnectionLimits {
  /** Most connections open at once, all clients together. */
  maxConnections: number;
  /** Most connections open at once from one client address. */
  maxConnectionsPerClient: number;
}

/** Why a connection was refused. */
export type RefusalReason = "total" | "per-client";

/** Counts a server's connections and refuses those over its caps. */
export class ConnectionLimiter {
  readonly #perClient = new Map<string, number>();
  #open = 0;

  readonly #limits: ConnectionLimits;
  readonly #onRefused: (reason: RefusalReason, client: string) => void;

  constructor(
    limits: ConnectionLimits,
    onRefused: (reason: RefusalReason, client: string) => void = () => {},
  ) {
    this.#limits = limits;
    this.#onRefused = onRefused;
  }

  /** Watches `server`'s new connections from now on. */
  attach(server: Server): void {
    server.on("connection", (socket: Socket) => this.#admit(socket));
  }

  /** Connections open now, and from how many addresses. */
  stats(): { open: number; clients: number } {
    return { open: this.#open, clients: this.#perClient.size };
  }

  #admit(socket: Socket): void {
    // A socket reset before this runs has no address any more; it closes by itself.
    const client = socket.remoteAddress ?? "unknown";
    const fromClient = this.#perClient.get(client) ?? 0;
    const reason: RefusalReason | undefined =
      this.#open >= this.#limits.maxConnections
        ? "total"
        : fromClient >= this.#limits.maxConnectionsPerClient
          ? "per-client"
          : undefined;
    if (reason !== undefined) {
      // No answer is written: an HTTP reply would wait for a request the client may never
      // send, and the point is to give the descriptor back now.
      socket.destroy();
      this.#onRefused(reason, client);
      return;
    }
    this.#open++;
    this.#perClient.set(client, fromClient + 1);
    socket.once("close", () => {
      this.#open--;
      const left = (this.#perClient.get(client) ?? 1) - 1;
      if (left <= 0) this.#perClient.delete(client);
      else this.#perClient.set(client, left);
    });
  }
}
