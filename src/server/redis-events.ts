/**
 * Tag events shared by every replica through one Redis stream: each replica appends the
 * events its own scans find (XADD, capped near `maxLength`) and reads the stream back
 * (XREAD BLOCK), so every replica's `/v1/events` carries every replica's events, once, with
 * the stream id as the event id: a client reconnecting with `Last-Event-ID` gets what it
 * missed, as long as the stream still holds it.
 */
import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import { abortableSleep, raceAbort } from "../abort.js";
import type { TagEvent } from "../cache/warmer-types.js";
import { RegscanError } from "../errors.js";

/** Default stream key (one key, so one cluster slot). */
export const DEFAULT_EVENT_STREAM_KEY = "regscan:v2:events";
/** Default cap on the events the stream keeps (approximately: `MAXLEN ~`). */
export const DEFAULT_EVENT_STREAM_LENGTH = 10_000;

/** A `Last-Event-ID` that is not a stream id. */
export class InvalidEventIdError extends RegscanError {
  readonly code = "INVALID_EVENT_ID";
  constructor(readonly input: string) {
    super(`Last-Event-ID ${JSON.stringify(input.slice(0, 64))} is not an event id of this stream`);
  }
}

/** An event with the id the stream gave it. */
export interface StreamedTagEvent {
  id: string;
  event: TagEvent;
}

/** How the shared stream is set up. */
export interface RedisTagEventsOptions {
  /** Appends (XADD) and replays (XRANGE): short commands, may be the store's own kind. */
  writer: Redis | Cluster;
  /** Blocks in XREAD: a connection of its own (see `RedisStore.duplicateConnection`). */
  reader: Redis | Cluster;
  /** Who appends: kept with each event, for logs. */
  replica: string;
  logger: Logger;
  key?: string;
  maxLength?: number;
  /** Longest single XREAD block, ms (default 5 s); the loop re-blocks until stopped. */
  blockMs?: number;
  /** Most events handed back to a reconnecting client (default `maxLength`). */
  maxReplay?: number;
}

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/** The shared stream of one daemon. */
export class RedisTagEvents {
  readonly #opts: RedisTagEventsOptions;
  readonly #key: string;
  readonly #listeners = new Set<(e: StreamedTagEvent) => void>();
  #lastId = "$";
  #lastErrorLog = 0;

  constructor(opts: RedisTagEventsOptions) {
    this.#opts = opts;
    this.#key = opts.key ?? DEFAULT_EVENT_STREAM_KEY;
  }

  /**
   * Appends `event`; resolves to its id, or undefined when Redis did not take it (logged;
   * the caller may deliver it locally instead).
   */
  async publish(event: TagEvent): Promise<string | undefined> {
    try {
      const id = await this.#opts.writer.xadd(
        this.#key,
        "MAXLEN",
        "~",
        String(this.#opts.maxLength ?? DEFAULT_EVENT_STREAM_LENGTH),
        "*",
        "event",
        JSON.stringify({ ...event, at: event.at.toISOString() }),
        "replica",
        this.#opts.replica,
      );
      return id ?? undefined;
    } catch (err) {
      this.#warn(err, "could not publish a tag event to Redis");
      return undefined;
    }
  }

  /** Calls `listener` for every event of the stream read from now on. */
  subscribe(listener: (e: StreamedTagEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * The events after `afterId` (oldest first, at most `maxReplay`); throws
   * `InvalidEventIdError` for an id that is not a stream id.
   */
  async replay(afterId: string, signal: AbortSignal): Promise<StreamedTagEvent[]> {
    if (!STREAM_ID.test(afterId)) throw new InvalidEventIdError(afterId);
    const count = this.#opts.maxReplay ?? this.#opts.maxLength ?? DEFAULT_EVENT_STREAM_LENGTH;
    const range = this.#opts.writer.xrange(this.#key, `(${afterId}`, "+", "COUNT", count);
    const entries = await raceAbort(range, signal);
    return entries.flatMap(([id, fields]) => decodeEntry(id, fields));
  }

  /**
   * Reads the stream until `signal` aborts, handing each event to the listeners. Starts at
   * the stream's end; after an error it waits a second and goes on from the last id read.
   */
  async run(signal: AbortSignal): Promise<void> {
    const reader = this.#opts.reader;
    const blockMs = this.#opts.blockMs ?? 5_000;
    // A blocked XREAD only returns when its block ends: disconnecting ends it at once.
    const stop = () => reader.disconnect();
    signal.addEventListener("abort", stop, { once: true });
    try {
      while (!signal.aborted) {
        try {
          // "$" means "after whatever is last when the block starts": every XREAD would miss
          // what was appended between two blocks. Start from the stream's actual last id.
          if (this.#lastId === "$") this.#lastId = await this.#lastStreamId();
          const got = await reader.xread(
            "COUNT",
            1000,
            "BLOCK",
            blockMs,
            "STREAMS",
            this.#key,
            this.#lastId,
          );
          for (const [, entries] of got ?? []) {
            for (const [id, fields] of entries) {
              this.#lastId = id;
              for (const e of decodeEntry(id, fields)) this.#deliver(e);
            }
          }
        } catch (err) {
          if (signal.aborted) break;
          this.#warn(err, "reading tag events from Redis failed; retrying");
          await abortableSleep(1_000, signal).catch(() => undefined);
        }
      }
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }

  async #lastStreamId(): Promise<string> {
    const last = await this.#opts.writer.xrevrange(this.#key, "+", "-", "COUNT", 1);
    return last[0]?.[0] ?? "0-0";
  }

  #deliver(e: StreamedTagEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(e);
      } catch {
        // One broken stream must not stop the others.
      }
    }
  }

  #warn(err: unknown, message: string): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < 10_000) return;
    this.#lastErrorLog = now;
    this.#opts.logger.warn({ err: { message: (err as Error).message } }, message);
  }
}

function decodeEntry(id: string, fields: string[]): StreamedTagEvent[] {
  const at = fields.indexOf("event");
  const text = at >= 0 && at % 2 === 0 ? fields[at + 1] : undefined;
  if (text === undefined) return [];
  try {
    const raw = JSON.parse(text) as Record<string, unknown>;
    const type = raw.type;
    if (
      (type !== "new-tag" && type !== "moved-tag") ||
      typeof raw.repository !== "string" ||
      typeof raw.tag !== "string" ||
      typeof raw.digest !== "string" ||
      typeof raw.at !== "string"
    ) {
      return [];
    }
    const event: TagEvent = {
      type,
      repository: raw.repository,
      tag: raw.tag,
      digest: raw.digest,
      at: new Date(raw.at),
    };
    if (typeof raw.previousDigest === "string") event.previousDigest = raw.previousDigest;
    return [{ id, event }];
  } catch {
    return [];
  }
}

/** Compares two stream ids (`ms-seq`): negative when `a` comes first. */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split("-").map((p) => BigInt(p));
  const [bm = 0n, bs = 0n] = b.split("-").map((p) => BigInt(p));
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

/** True when `id` is a stream id (what `Last-Event-ID` must be with a Redis store). */
export function isStreamId(id: string): boolean {
  return STREAM_ID.test(id);
}
