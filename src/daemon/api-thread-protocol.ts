/**
 * The messages between `regscan serve`'s main thread (the warmer) and its API thread (the
 * HTTP server, src/daemon/api-thread-worker.ts), and the small request/answer layer over
 * them. Everything sent is structured-cloneable data: names, dates, events, no objects with
 * behaviour.
 */
import type { MessagePort } from "node:worker_threads";
import type { TagEvent } from "../cache/warmer-types.js";
import type { Config } from "../config/schema.js";
import { RegscanError } from "../errors.js";
import type { RepositoryStatus } from "../server/warmer-control.js";
import type { NormalisedEvent, WebhookKind } from "../server/webhooks/event.js";

/** What the API thread starts with. */
export interface ApiThreadData {
  config: Config;
  /** Where webhook secrets and store credentials named by variable are read. */
  env: Record<string, string | undefined>;
}

/** What this replica's warmer knows of a repository, as the API's headers use it. */
export type LocalStatus = Pick<RepositoryStatus, "repository" | "lastUpdate" | "intervalMs">;

/** A tag event as the feed handed it on (with its shared id, when events are shared). */
export interface FedEvent {
  event: TagEvent;
  id?: string | undefined;
}

/** Calls the API thread makes to the main thread, with their arguments and answers. */
export interface MainCalls {
  statuses: { args: []; answer: RepositoryStatus[] };
  /** `GET /v1/repositories`' body (server/json-forms.ts `statusListBody`). */
  statusListBody: { args: []; answer: Uint8Array };
  isWatched: { args: [name: string]; answer: boolean };
  requestRefresh: {
    args: [name: string, request: { tag?: string; listing?: boolean } | undefined];
    answer: "started" | "queued" | "coalesced";
  };
  replay: { args: [lastEventId: string]; answer: FedEvent[] | undefined };
  /** The main thread's metrics, in the Prometheus text format. */
  metrics: { args: []; answer: string };
  deliver: {
    args: [kind: WebhookKind, events: NormalisedEvent[]];
    answer: { refreshed: number; unwatched: number };
  };
}

/** A call's name. */
export type MainCall = keyof MainCalls;

/** Main thread -> API thread. */
export type ToApiThread =
  /** The watched repositories, whenever the lookup's answer changes. */
  | { type: "watch"; names: string[] }
  /** What the warmer knows now of the repositories it scanned since the last message. */
  | { type: "statuses"; statuses: LocalStatus[] }
  | { type: "events"; events: FedEvent[] }
  | { type: "answer"; id: number; value?: unknown; error?: CallError }
  /** Stop: close the server within `graceMs`, then the store. */
  | { type: "close"; graceMs: number };

/** API thread -> main thread. */
export type FromApiThread =
  | { type: "listening"; address: { address: string; family: string; port: number } }
  /** It could not start; `listen` when the address could not be bound. */
  | { type: "failed"; message: string; listen?: string | undefined }
  | { type: "call"; id: number; method: MainCall; args: unknown[] }
  /** A log line (pino JSON) for the main thread's logger. */
  | { type: "log"; line: string };

/** A failed call, as it crosses threads. */
export interface CallError {
  message: string;
  code?: string | undefined;
}

/** A call to the warmer's thread that failed there, or got no answer in time. */
export class ApiThreadCallError extends RegscanError {
  readonly code = "API_THREAD_CALL_FAILED";
  constructor(method: string, error: CallError) {
    super(
      `${method} on the warmer's thread: ${error.message}${error.code ? ` (${error.code})` : ""}`,
    );
  }
}

/** How long a call to the main thread may wait for its answer. */
const CALL_TIMEOUT_MS = 30_000;

/** The API thread's side of the calls: sends them, and settles them as answers come. */
export class MainThreadCalls {
  readonly #port: MessagePort;
  readonly #pending = new Map<
    number,
    { method: string; resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }
  >();
  #next = 1;

  constructor(port: MessagePort) {
    this.#port = port;
  }

  /** Sends `method(...args)` to the main thread; rejects after 30 s without an answer. */
  call<M extends MainCall>(
    method: M,
    ...args: MainCalls[M]["args"]
  ): Promise<MainCalls[M]["answer"]> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new ApiThreadCallError(method, { message: `no answer within ${CALL_TIMEOUT_MS} ms` }),
        );
      }, CALL_TIMEOUT_MS);
      this.#pending.set(id, {
        method,
        resolve: resolve as (v: unknown) => void,
        reject,
        timer,
      });
      this.#port.postMessage({ type: "call", id, method, args } satisfies FromApiThread);
    });
  }

  /** Settles the call an `answer` message is for. */
  settle(message: Extract<ToApiThread, { type: "answer" }>): void {
    const call = this.#pending.get(message.id);
    if (!call) return;
    this.#pending.delete(message.id);
    clearTimeout(call.timer);
    if (message.error) call.reject(new ApiThreadCallError(call.method, message.error));
    else call.resolve(message.value);
  }

  /** Fails every call still waiting (the thread is stopping). */
  failAll(reason: string): void {
    for (const [id, call] of this.#pending) {
      clearTimeout(call.timer);
      call.reject(new ApiThreadCallError(call.method, { message: reason }));
      this.#pending.delete(id);
    }
  }
}
