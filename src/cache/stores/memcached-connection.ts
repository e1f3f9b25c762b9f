/**
 * The memjs client the memcached store talks to one server through, with memjs's
 * connection handling made safe: a new connection never parses bytes left over from a
 * dead one, a server that closes mid-answer fails the pending requests at once, request
 * ids never leave the 32-bit unsigned range, and no SASL credentials come from the environment.
 */
import type { Socket } from "node:net";
import memjs from "memjs";
import type { StoreLogger } from "./options.js";

/** A memjs client for one server; values are raw bytes. */
export type MemcachedClient = memjs.Client<Buffer, Buffer | null>;

/** The memjs fields the fixes below reset; memjs's typings mark them read-only. */
interface ServerInternals {
  responseBuffer: Buffer;
  username: string | undefined;
  password: string | undefined;
  _socket: Socket | undefined;
}

/**
 * memjs's `Server`, whose receive buffer outlives its sockets: after a timeout or a close
 * in the middle of an answer, the next connection's answers were parsed after the stale
 * partial frame, so a retried request could be handed bytes of another answer.
 */
class CleanServer extends memjs.Server {
  /** The socket whose bytes the receive buffer holds. */
  #socket: Socket | undefined;

  constructor(host: string, port: number, options: memjs.ServerOptions) {
    super(host, port, undefined, undefined, options);
    // memjs falls back to MEMCACHIER_* / MEMCACHE_* variables for SASL; regscan's URLs
    // take no credentials, so none are sent to a server the user did not name for them.
    const internals = this as unknown as ServerInternals;
    internals.username = undefined;
    internals.password = undefined;
  }

  override sock(sasl: boolean, go: (socket: Socket) => void): void {
    super.sock(sasl, (socket) => {
      if (socket !== this.#socket) this.#adopt(socket);
      go(socket);
    });
  }

  override error(error: Error): void {
    this.#forget();
    super.error(error);
  }

  #adopt(socket: Socket) {
    this.#forget();
    this.#socket = socket;
    socket.once("close", () => {
      // memjs only fails pending requests on a socket error; a server that closes cleanly
      // mid-answer left them waiting for the timeout. memjs clears `_socket` just before
      // this runs, unless a newer connection already replaced it.
      const internals = this as unknown as ServerInternals;
      if (this.#socket === socket && internals._socket === undefined) {
        this.error(new Error("connection closed by the server"));
      }
    });
  }

  /** Drops the current socket and whatever partial answer it left in the buffer. */
  #forget() {
    this.#socket?.destroy();
    this.#socket = undefined;
    (this as unknown as ServerInternals).responseBuffer = Buffer.alloc(0);
  }
}

/**
 * memjs's `Client`, whose request id wraps to a negative number after 2^31 requests; the
 * protocol's opaque field is unsigned, so from then on every request failed to encode.
 */
class WrappingClient extends memjs.Client<Buffer, Buffer | null> {
  override incrSeq(): void {
    super.incrSeq();
    const self = this as unknown as { seq: number };
    if (self.seq < 0 || self.seq > 0x7fffffff) self.seq = 1;
  }
}

/** Options of {@link memcachedClient}. */
export interface MemcachedClientOptions {
  /** Longest wait for one operation; memjs gets half of it per attempt, two attempts. */
  timeoutMs: number;
  /** Seconds between memjs's two attempts. */
  retryDelayS: number;
  logger: StoreLogger;
  /** Logged with memjs's messages, e.g. the store's name. */
  store: string;
}

/** A client for the memcached server at `host:port` (IPv6 in brackets allowed). */
export function memcachedClient(server: string, opts: MemcachedClientOptions): MemcachedClient {
  const at = server.lastIndexOf(":");
  const host = server.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  const port = Number(server.slice(at + 1));
  const perAttemptS = Math.max(0.1, opts.timeoutMs / 1000 / 2);
  const { logger, store } = opts;
  return new WrappingClient(
    [
      new CleanServer(host, port, {
        timeout: perAttemptS,
        conntimeout: perAttemptS,
        keepAlive: true,
      }),
    ],
    {
      // Bounded: two attempts in all, then the caller gets a typed error.
      retries: 2,
      retry_delay: opts.retryDelayS,
      failover: false,
      logger: {
        log: (...args: unknown[]) => logger.debug({ store, server }, args.map(String).join(" ")),
      },
    },
  );
}
