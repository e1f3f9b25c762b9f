/**
 * Server-sent events for `GET /v1/events`: one subscription to the warmer per client,
 * heartbeats so that proxies keep the stream open, and slow clients dropped rather than
 * buffered without bound.
 */
import type { ServerResponse } from "node:http";
import { eventJson } from "./json-forms.js";
import { compareStreamIds } from "./redis-events.js";
import type { TagEvent, WarmerControl } from "./warmer-control.js";

/** Settings of the event streams. */
export interface EventStreamOptions {
  /** Most concurrent streams (default 100). */
  maxClients?: number | undefined;
  /** Milliseconds between heartbeat comments (default 15 s). */
  heartbeatMs?: number | undefined;
  /** Bytes a client may fall behind before it is dropped (default 1 MiB). */
  maxBufferedBytes?: number | undefined;
}

/** The open event streams. */
export class EventStreams {
  readonly #open = new Set<ServerResponse>();
  #nextId = 1;

  readonly #warmer: WarmerControl;
  readonly #opts: EventStreamOptions;

  constructor(warmer: WarmerControl, opts: EventStreamOptions = {}) {
    this.#warmer = warmer;
    this.#opts = opts;
  }

  /** False when the stream limit is reached. */
  hasRoom(): boolean {
    return this.#open.size < (this.#opts.maxClients ?? 100);
  }

  /**
   * Starts streaming to `res`, optionally only the events of one repository. With
   * `lastEventId` (a reconnecting client) and events that are kept, the events it missed
   * come first.
   */
  attach(res: ServerResponse, repository: string | undefined, lastEventId?: string): void {
    // The client may have gone while the request was checked; its "close" has then been
    // emitted already, and a subscription made now would never be removed.
    if (res.destroyed || res.socket === null || res.socket.destroyed) return;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write("retry: 5000\n: connected\n\n");
    this.#open.add(res);
    const maxBuffered = this.#opts.maxBufferedBytes ?? 1024 * 1024;
    const write = (event: TagEvent, id: string | undefined) => {
      if (res.destroyed || (repository !== undefined && event.repository !== repository)) return;
      if (res.writableLength > maxBuffered) {
        res.destroy();
        return;
      }
      res.write(
        `id: ${id ?? this.#nextId++}\nevent: ${event.type}\ndata: ${JSON.stringify(eventJson(event))}\n\n`,
      );
    };
    const replay = lastEventId === undefined ? undefined : this.#warmer.replay;
    // Live events that come while the missed ones are read wait, so that the order holds
    // and nothing is sent twice.
    let held: Array<{ event: TagEvent; id: string | undefined }> | undefined = replay
      ? []
      : undefined;
    const unsubscribe = this.#warmer.subscribe((event: TagEvent, id?: string) => {
      if (held) held.push({ event, id });
      else write(event, id);
    });
    if (replay && lastEventId !== undefined) {
      const gone = new AbortController();
      res.once("close", () => gone.abort());
      void replay
        .call(
          this.#warmer,
          lastEventId,
          AbortSignal.any([gone.signal, AbortSignal.timeout(10_000)]),
        )
        .catch(() => undefined)
        .then((missed) => {
          let last: string | undefined;
          for (const m of missed ?? []) {
            write(m.event, m.id);
            last = m.id;
          }
          const waiting = held ?? [];
          held = undefined;
          for (const w of waiting) {
            if (last !== undefined && w.id !== undefined && this.#notAfter(w.id, last)) continue;
            write(w.event, w.id);
          }
        });
    }
    // Comments keep proxies and load balancers from closing an idle stream.
    const heartbeat = setInterval(() => {
      if (res.writableLength > maxBuffered) res.destroy();
      else res.write(": heartbeat\n\n");
    }, this.#opts.heartbeatMs ?? 15_000);
    heartbeat.unref();
    res.on("close", () => {
      clearInterval(heartbeat);
      unsubscribe();
      this.#open.delete(res);
    });
  }

  /** True when stream id `id` is `last` or older (ids `ms-seq`). */
  #notAfter(id: string, last: string): boolean {
    return compareStreamIds(id, last) <= 0;
  }

  /** Ends every stream (on shutdown). */
  closeAll(): void {
    for (const res of this.#open) res.end();
    this.#open.clear();
  }

  /** How many streams are open. */
  get size(): number {
    return this.#open.size;
  }
}
