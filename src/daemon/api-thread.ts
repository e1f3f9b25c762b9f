/**
 * The main thread's side of `regscan serve`'s API thread: starts the worker that serves the
 * HTTP API (src/daemon/api-thread-worker.ts), answers its calls (status list, refreshes,
 * webhook deliveries, metrics) and keeps it told of what it reads without asking: the watch
 * list, each scanned repository's local status and the tag events. A thread that dies is
 * started again on the same address, so the warmer's work is never lost with it.
 *
 * Why a thread: the warmer's work (registry answers, store writes, their garbage) holds this
 * thread's event loop for tens to hundreds of milliseconds at a time on a busy replica, and a
 * read of a cached repository waited behind all of it (bench:scale, 200,000 tags: reads p99
 * 560-685 ms). On its own event loop, with its own store connection and heap, a read waits
 * only for a core.
 */
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import type { Warmer } from "../cache/warmer.js";
import type { Config } from "../config/schema.js";
import { RegscanError } from "../errors.js";
import { parseImageName } from "../image/ref.js";
import { statusListBody } from "../server/json-forms.js";
import type { WarmerControl } from "../server/warmer-control.js";
import type { WebhookSink } from "../server/webhook-endpoint.js";
import type {
  ApiThreadData,
  FedEvent,
  FromApiThread,
  LocalStatus,
  MainCall,
  ToApiThread,
} from "./api-thread-protocol.js";
import type { WatchList } from "./watch-list.js";

/** The API thread could not start (its message is the cause's, e.g. a webhook secret missing). */
export class ApiThreadStartError extends RegscanError {
  readonly code = "API_THREAD_START_FAILED";
  /** The system's code when the address could not be bound (`EADDRINUSE`, ...). */
  readonly listenCode: string | undefined;
  constructor(message: string, listenCode?: string) {
    super(message);
    this.listenCode = listenCode;
  }
}

/** How often the local statuses of scanned repositories are handed over, at most. */
const STATUS_FLUSH_MS = 200;
/** The first wait before a dead API thread is started again; doubled up to the maximum. */
const RESTART_MS = 500;
const MAX_RESTART_MS = 30_000;
/** How long a started thread may take to listen. */
const START_TIMEOUT_MS = 30_000;
/**
 * The API thread's heap. Its answers are buffers outside it; what it holds is the image
 * records and text of answers being built (small ones up to 8,192 tags at once, heavy ones
 * four turns of 5,000 tags), the cache's image memo (8 MiB) and bucket and record memos, a
 * status list of every repository, and the connections' state. 48 MiB of old space ran out
 * under bench:scale's 50 readers and its watch of the fill (200,000 tags: the thread died
 * and was restarted two or three times a run), once the limit applied (see below).
 * Young objects get 24 MiB (8 MiB semi-spaces, as the main thread's): with 8 MiB (2.7 MiB
 * semi-spaces) a read's objects outlived two scavenges whenever reads waited 100 ms, and at
 * 2,000 reads a second 10 MB/s were promoted, for a full collection every half second
 * (41 in the readers' 20 s at 2,000,000 tags; 16 with 24 MiB, reads p99 172 -> 117 ms).
 */
export const RESOURCE_LIMITS = { maxOldGenerationSizeMb: 96, maxYoungGenerationSizeMb: 24 };

/**
 * V8's heap-size flags are the process's, and a thread's isolate takes them over its own
 * limits: under the image's and the systemd unit's `--max-old-space-size=128
 * --max-semi-space-size=8` the API thread's heap could grow to 152 MiB, not
 * {@link RESOURCE_LIMITS}' (bench:scale at 200,000 tags, 50 readers: 105 MiB of it, and
 * 320 MiB VmHWM). Zeroed (V8's "unset"), they leave a new thread's limits in charge; the main
 * thread's heap was sized when it started, and keeps its limits. Process-wide: a worker an
 * embedder starts later is sized by its own `resourceLimits` or V8's defaults too.
 */
function letThreadLimitsApply(): void {
  setFlagsFromString("--max-old-space-size=0");
  setFlagsFromString("--max-semi-space-size=0");
}

/** What {@link ApiThread.start} wires to the thread. */
export interface ApiThreadOptions {
  config: Config;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** What the thread's calls are answered from. */
  control: WarmerControl;
  watch: WatchList;
  /** What the thread is told of each repository scanned. */
  warmer: Pick<Warmer, "onScan" | "repositoryStatus">;
  /** The main thread's metrics, which the thread's `/metrics` serves with its own. */
  metrics: MetricsRegistry;
  /** Where webhook events go; without it the thread has no webhook routes. */
  webhookSink?: WebhookSink | undefined;
  /**
   * Starts a thread (runs what it is given): a restart goes through it, so that the
   * warmer's lowered priority is not what the new thread inherits (src/daemon/warmer-priority.ts).
   */
  startThread?: (<T>(start: () => T) => T) | undefined;
}

/** The API served from a thread of its own. */
export class ApiThread {
  readonly #opts: ApiThreadOptions;
  readonly #data: ApiThreadData;
  // Set by `start` before the instance is handed out.
  #worker!: Worker;
  #address!: AddressInfo;
  #closing = false;
  #restartMs = RESTART_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  readonly #stops: Array<() => void> = [];

  private constructor(opts: ApiThreadOptions) {
    this.#opts = opts;
    this.#data = { config: opts.config, env: { ...opts.env } };
  }

  /** Starts the thread; resolves once it listens, rejects with its reason if it cannot. */
  static async start(opts: ApiThreadOptions): Promise<ApiThread> {
    const thread = new ApiThread(opts);
    const { worker, address } = await thread.#spawn(thread.#data);
    thread.#worker = worker;
    thread.#address = address;
    thread.#feed();
    thread.#restartOnExit(worker);
    return thread;
  }

  /** The address the thread listens on (the same across restarts). */
  get address(): AddressInfo {
    return this.#address;
  }

  /**
   * Closes the thread's server (requests in flight get `graceMs`), then its store; resolves
   * when the thread has ended (terminated if it takes a second longer than the grace).
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#restartTimer);
    for (const stop of this.#stops) stop();
    const worker = this.#worker;
    const ended = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    worker.postMessage({ type: "close", graceMs } satisfies ToApiThread);
    const late = setTimeout(() => void worker.terminate(), graceMs + 1_000);
    await ended;
    clearTimeout(late);
  }

  /**
   * Ends the running thread at once, as a crash would: it is started again like one (what
   * the tests check; an operator has SIGTERM for the whole daemon).
   */
  async crash(): Promise<void> {
    await this.#worker.terminate();
  }

  /** Hands the thread what it reads without asking, from now on. */
  #feed(): void {
    const { watch, warmer, control } = this.#opts;
    const post = (message: ToApiThread) => this.#worker.postMessage(message);
    this.#stops.push(watch.onChange((names) => post({ type: "watch", names })));
    let scanned = new Set<string>();
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      const statuses: LocalStatus[] = [];
      for (const name of scanned) {
        const s = warmer.repositoryStatus(name);
        if (!s) continue;
        const local: LocalStatus = { repository: name };
        if (s.lastUpdate) local.lastUpdate = s.lastUpdate;
        if (s.intervalMs !== undefined) local.intervalMs = s.intervalMs;
        statuses.push(local);
      }
      scanned = new Set();
      if (statuses.length > 0) post({ type: "statuses", statuses });
    };
    this.#stops.push(
      warmer.onScan((result) => {
        scanned.add(result.repository);
        timer ??= setTimeout(flush, STATUS_FLUSH_MS);
      }),
      () => clearTimeout(timer),
    );
    // Events go over in batches, one per round of the event loop.
    let events: FedEvent[] = [];
    let queued = false;
    this.#stops.push(
      control.subscribe((event, id) => {
        events.push(id === undefined ? { event } : { event, id });
        if (queued) return;
        queued = true;
        setImmediate(() => {
          queued = false;
          const batch = events;
          events = [];
          post({ type: "events", events: batch });
        });
      }),
    );
  }

  /** Starts a new thread if `worker` dies. */
  #restartOnExit(worker: Worker): void {
    worker.on("error", (err) =>
      this.#opts.logger.error({ err: { message: err.message } }, "the API thread failed"),
    );
    worker.once("exit", (code) => {
      if (this.#closing || worker !== this.#worker) return;
      this.#opts.logger.error(
        { exitCode: code, restartInMs: this.#restartMs },
        "the API thread stopped; starting it again",
      );
      this.#restartTimer = setTimeout(() => void this.#restart(), this.#restartMs);
      this.#restartMs = Math.min(MAX_RESTART_MS, this.#restartMs * 2);
    });
  }

  async #restart(): Promise<void> {
    if (this.#closing) return;
    // The same port, so that clients and probes find it again where it was.
    const data: ApiThreadData = {
      ...this.#data,
      config: { ...this.#data.config, listen: listenAddress(this.address) },
    };
    try {
      const { worker } = await this.#spawn(data);
      if (this.#closing) {
        worker.postMessage({ type: "close", graceMs: 0 } satisfies ToApiThread);
        return;
      }
      this.#worker = worker;
      this.#restartMs = RESTART_MS;
      this.#restartOnExit(worker);
      this.#opts.logger.info({ listen: data.config.listen }, "the API thread is serving again");
    } catch (err) {
      this.#opts.logger.error(
        { err: { message: (err as Error).message }, restartInMs: this.#restartMs },
        "the API thread could not start again",
      );
      this.#restartTimer = setTimeout(() => void this.#restart(), this.#restartMs);
      this.#restartMs = Math.min(MAX_RESTART_MS, this.#restartMs * 2);
    }
  }

  /**
   * Starts a thread and waits until it listens (or says why it cannot). Its calls and log
   * lines are served from its first message on, so none is missed between its start and
   * this method's return.
   */
  #spawn(data: ApiThreadData): Promise<{ worker: Worker; address: AddressInfo }> {
    const { logger, watch } = this.#opts;
    const start = this.#opts.startThread ?? ((run) => run());
    letThreadLimitsApply();
    const worker = start(
      () =>
        new Worker(workerEntry(), {
          workerData: data,
          resourceLimits: RESOURCE_LIMITS,
          // Its output is relayed as log lines; nothing else writes.
          stdout: false,
          stderr: false,
        }),
    );
    worker.postMessage({ type: "watch", names: watch.list() } satisfies ToApiThread);
    let started: ((message: FromApiThread) => void) | undefined;
    worker.on("message", (message: FromApiThread) => {
      if (message.type === "log") relayLog(logger, message.line);
      else if (message.type === "call") void this.#answer(worker, message);
      else started?.(message);
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(
          new ApiThreadStartError(`the API thread did not start within ${START_TIMEOUT_MS} ms`),
        );
      }, START_TIMEOUT_MS);
      const onExit = (code: number) => {
        done();
        reject(new ApiThreadStartError(`the API thread exited (code ${code}) before it listened`));
      };
      const onError = (err: Error) => {
        done();
        reject(new ApiThreadStartError(`the API thread failed before it listened: ${err.message}`));
      };
      const done = () => {
        clearTimeout(timer);
        started = undefined;
        worker.off("exit", onExit);
        worker.off("error", onError);
      };
      started = (message) => {
        if (message.type === "listening") {
          done();
          resolve({ worker, address: message.address as AddressInfo });
        } else if (message.type === "failed") {
          done();
          void worker.terminate();
          reject(new ApiThreadStartError(message.message, message.listen));
        }
      };
      worker.once("exit", onExit);
      worker.once("error", onError);
    });
  }

  async #answer(worker: Worker, message: Extract<FromApiThread, { type: "call" }>): Promise<void> {
    let reply: ToApiThread;
    try {
      const value = await this.#call(message.method, message.args);
      reply = { type: "answer", id: message.id, value };
    } catch (err) {
      const e = err as Error & { code?: unknown };
      reply = {
        type: "answer",
        id: message.id,
        error: { message: e.message, code: typeof e.code === "string" ? e.code : undefined },
      };
    }
    // To a thread that ended meanwhile, nothing is sent.
    worker.postMessage(reply);
  }

  async #call(method: MainCall, args: unknown[]): Promise<unknown> {
    const { control, metrics, webhookSink } = this.#opts;
    switch (method) {
      case "statuses":
        return control.statuses();
      case "statusListBody":
        return statusListBody(await control.statuses());
      case "isWatched":
        return control.isWatched(parseImageName(String(args[0])));
      case "requestRefresh":
        return control.requestRefresh(
          parseImageName(String(args[0])),
          args[1] as { tag?: string; listing?: boolean } | undefined,
        );
      case "replay": {
        const replayed = await control.replay?.(String(args[0]), AbortSignal.timeout(10_000));
        return replayed?.map(({ id, event }) => ({ id, event }));
      }
      case "metrics":
        return metrics.metrics();
      case "deliver": {
        if (!webhookSink) return { refreshed: 0, unwatched: 0 };
        const [kind, events] = args as Parameters<WebhookSink["deliver"]>;
        return webhookSink.deliver(kind, events);
      }
    }
  }
}

/**
 * The thread's entry module. Run from the TypeScript sources (the tests, through tsx), a
 * worker on Node 20 does not get the parent's loader hooks: it registers tsx's itself before
 * loading the entry.
 */
function workerEntry(): URL {
  if (!fileURLToPath(import.meta.url).endsWith(".ts")) {
    return new URL("./api-thread-worker.js", import.meta.url);
  }
  const entry = new URL("./api-thread-worker.ts", import.meta.url).href;
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

/** `host:port` for `address`, bracketing an IPv6 host. */
function listenAddress(address: AddressInfo): string {
  return address.family === "IPv6"
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`;
}

const LEVEL_METHODS: Record<number, "trace" | "debug" | "info" | "warn" | "error" | "fatal"> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

/**
 * Logs a line of the thread's (pino JSON, filtered at the same level already) with the main
 * thread's logger, so that both threads' lines go wherever the daemon's go, in its format.
 */
function relayLog(logger: Logger, line: string): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const { level, msg, time: _time, pid: _pid, hostname: _hostname, ...fields } = record;
  const method = LEVEL_METHODS[Number(level)] ?? "info";
  logger[method]({ thread: "api", ...fields }, typeof msg === "string" ? msg : "");
}
