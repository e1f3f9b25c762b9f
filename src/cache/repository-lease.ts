/**
 * The lease a warmer holds on a repository while it scans it, so that replicas sharing a
 * store never scan one repository at the same time: taken before the scan, renewed while it
 * runs, given back when it ends (including when it is stopped). Who holds it (host and
 * process) is written beside it, so that a lease left by a killed process on this host is
 * taken over at once instead of blocking the repository until it expires.
 */
import { hostname } from "node:os";
import type { Logger } from "pino";
import { underSignals } from "../abort.js";
import { RegscanError } from "../errors.js";
import { summarizeError } from "./error-summary.js";
import { isTime } from "./records.js";
import type { Store, StoreWrite } from "./store.js";

/** The lease expired and another warmer took it while this one was still scanning. */
export class LeaseLostError extends RegscanError {
  readonly code = "LEASE_LOST";
  constructor(readonly key: string) {
    super(`another warmer took over the lease ${key}; this scan stopped to leave it the work`);
  }
}

/** Who holds a lease: the owner id and the process behind it. */
export interface LeaseHolder {
  owner: string;
  host: string;
  pid: number;
  /** When the holder took the lease. */
  since: Date;
}

/** What taking a lease gave. */
export type LeaseOutcome =
  | { taken: true; lease: RepositoryLease; tookOverFrom?: LeaseHolder | undefined }
  | { taken: false; held: true; holder?: LeaseHolder | undefined }
  | { taken: false; held: false; error: unknown };

/** Where a lease is and who may take it. */
export interface LeaseRequest {
  store: Store;
  key: string;
  /** Where the holder's host and process id are written beside the lease. */
  holderKey: string;
  owner: string;
  ttlMs: number;
  log: Logger;
  onLost: (error: LeaseLostError) => void;
  signal: AbortSignal;
  now: () => number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeHolder(holder: LeaseHolder): Uint8Array {
  return encoder.encode(JSON.stringify({ ...holder, since: holder.since.getTime() }));
}

function decodeHolder(bytes: Uint8Array): LeaseHolder | undefined {
  try {
    const h: unknown = JSON.parse(decoder.decode(bytes));
    if (typeof h !== "object" || h === null) return undefined;
    const { owner, host, pid, since } = h as Record<string, unknown>;
    if (typeof owner !== "string" || typeof host !== "string") return undefined;
    if (!Number.isSafeInteger(pid) || (pid as number) <= 0 || !isTime(since)) {
      return undefined;
    }
    return { owner, host, pid: pid as number, since: new Date(since) };
  } catch {
    return undefined;
  }
}

/**
 * Whether process `pid` of this host still runs. Signal 0 only checks: `ESRCH` means gone;
 * `EPERM` means it runs as another user.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

let host: string | undefined;
/** This machine's name (asked once: `os.hostname()` is a system call, and a scan takes a lease). */
function thisHost(): string {
  host ??= hostname();
  return host;
}

/** A holder that is a dead process of this host: its lease can be taken over at once. */
function isDeadHere(holder: LeaseHolder | undefined): holder is LeaseHolder {
  return (
    holder !== undefined &&
    holder.host === thisHost() &&
    holder.pid !== process.pid &&
    !processAlive(holder.pid)
  );
}

/**
 * Proof that the lease was acquired, known to this module only: a lease is constructed by
 * {@link RepositoryLease.take} alone, never around a lease the store did not grant.
 */
const ACQUIRED: unique symbol = Symbol("acquired");

/** A lease this warmer holds; call {@link RepositoryLease.release} exactly once. */
export class RepositoryLease {
  readonly #timer: NodeJS.Timeout;
  readonly #store: Store;
  readonly #key: string;
  readonly #owner: string;
  readonly #ttlMs: number;
  readonly #log: Logger;
  #renewing = false;
  #released = false;

  /**
   * Use {@link RepositoryLease.take}: `_acquired` is a value only this module has, so that
   * no other code wraps a lease the store did not grant.
   */
  constructor(req: LeaseRequest, _acquired: typeof ACQUIRED) {
    this.#store = req.store;
    this.#key = req.key;
    this.#owner = req.owner;
    this.#ttlMs = req.ttlMs;
    this.#log = req.log;
    const { onLost } = req;
    // Renewed every third of its lifetime, so that one failed renewal still leaves time.
    const every = Math.max(1000, Math.floor(req.ttlMs / 3));
    this.#timer = setInterval(() => void this.#renew(every, onLost), every);
    this.#timer.unref();
  }

  /**
   * Takes the lease for `owner`, taking it over from a dead process of this host. A store
   * that cannot answer is reported, not thrown: the caller decides (the warmer does not
   * scan what it could not store anyway). Rejects only when `signal` aborts.
   */
  static async take(req: LeaseRequest): Promise<LeaseOutcome> {
    const { store, key, owner, signal } = req;
    let tookOverFrom: LeaseHolder | undefined;
    // Who holds it goes beside it in the same command where the store can (one round trip).
    const holder = store.acquireAndSet ? holderWrite(req) : undefined;
    let holderWritten = false;
    const acquire = async () => {
      if (holder && store.acquireAndSet) {
        holderWritten = await store.acquireAndSet({ key, ttlMs: req.ttlMs, owner }, holder, {
          signal,
        });
        return holderWritten;
      }
      return store.acquire(key, req.ttlMs, owner, { signal });
    };
    try {
      if (!(await acquire())) {
        const held = await readHolder(req);
        if (!isDeadHere(held)) return { taken: false, held: true, holder: held };
        // Release is conditional on the owner: if someone live took it meanwhile, a no-op.
        await store.release(key, held.owner, { signal });
        if (!(await acquire())) return { taken: false, held: true };
        tookOverFrom = held;
        req.log.warn(
          { holder: `${held.host}:${held.pid}`, since: held.since },
          "took over the repository lease of a process that no longer runs",
        );
      }
    } catch (error) {
      signal.throwIfAborted();
      return { taken: false, held: false, error };
    }
    if (!holderWritten) await writeHolder(req);
    const lease = new RepositoryLease(req, ACQUIRED);
    return { taken: true, lease, tookOverFrom };
  }

  /**
   * Writes `write` (the scan's repository record, its last write), then gives the lease
   * back in the same round trip where the store can (`setAndRelease`); elsewhere only
   * writes it, and {@link release} gives the lease back. Throws what the write threw (the
   * lease is then {@link release}d as usual).
   */
  async writeThenRelease(write: StoreWrite, signal: AbortSignal): Promise<void> {
    const store = this.#store;
    if (!store.setAndRelease || this.#released) {
      await store.set(write.key, write.deadline, write.value, { signal });
      return;
    }
    clearInterval(this.#timer);
    await store.setAndRelease(write, { key: this.#key, owner: this.#owner }, { signal });
    this.#released = true;
  }

  /**
   * Stops renewing and gives the lease back (bounded by `timeoutMs`; failures are logged),
   * unless {@link writeThenRelease} already did.
   */
  async release(timeoutMs: number): Promise<void> {
    clearInterval(this.#timer);
    if (this.#released) return;
    this.#released = true;
    try {
      await this.#store.release(this.#key, this.#owner, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      // It expires by itself; until then other warmers skip the repository.
      this.#log.warn({ error: summarizeError(error) }, "could not release the repository lease");
    }
  }

  async #renew(timeoutMs: number, onLost: (error: LeaseLostError) => void): Promise<void> {
    if (this.#renewing) return; // the previous renewal is still waiting for the store
    this.#renewing = true;
    try {
      const kept = await this.#store.acquire(this.#key, this.#ttlMs, this.#owner, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!kept) {
        clearInterval(this.#timer);
        onLost(new LeaseLostError(this.#key));
      }
    } catch (error) {
      // Still ours until it expires; the next renewal tries again.
      this.#log.warn({ error: summarizeError(error) }, "could not renew the repository lease");
    } finally {
      this.#renewing = false;
    }
  }
}

/** Who holds the lease, as written beside it; undefined when unknown (best effort). */
async function readHolder(req: LeaseRequest): Promise<LeaseHolder | undefined> {
  const got = await req.store.get(req.holderKey, { signal: req.signal });
  return got && decodeHolder(got.value);
}

/** This process as the lease's holder from now, as written beside the lease. */
function holderWrite(req: LeaseRequest): StoreWrite {
  const now = req.now();
  const holder = { owner: req.owner, host: thisHost(), pid: process.pid, since: new Date(now) };
  return { key: req.holderKey, deadline: new Date(now + req.ttlMs), value: encodeHolder(holder) };
}

/** Writes who holds the lease now (best effort: without it only takeover is lost). */
async function writeHolder(req: LeaseRequest): Promise<void> {
  const { key, deadline, value } = holderWrite(req);
  // The request's signal is the scan's, long-lived: not AbortSignal.any (see eitherSignal).
  try {
    await underSignals([req.signal, AbortSignal.timeout(5000)], (signal) =>
      req.store.set(key, deadline, value, { signal }),
    );
  } catch (error) {
    req.log.warn({ error: summarizeError(error) }, "could not record the lease holder");
  }
}
