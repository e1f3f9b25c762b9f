/**
 * Which replicas share the store, so that they share the registries' request budgets: each
 * `regscan serve` process takes a share of every host's budget instead of the whole of it.
 *
 * One record in the store (`<prefix>replicas`) lists the replicas: for each, a heartbeat
 * counter and the share of the budgets it uses now. Every heartbeat a replica takes a short
 * lease on the record, reads it, bumps its own counter, writes it back and gives the lease
 * back; only `get`, `set`, `acquire` and `release` are needed, so it works on every store
 * (where the store has them, `acquireAndGet` and `setAndRelease` make it two round trips).
 * A replica is live while its counter keeps moving: each replica times the others by its own
 * clock (no clocks are compared), and one whose counter has not moved for the TTL is dead,
 * dropped from the record, and its share taken back by the others. A replica that stops
 * writes itself out at once.
 *
 * Shares never add up to more than the whole budget, joins and deaths included: a replica's
 * share is `1 / live replicas`, but never more than what the others' published shares leave
 * (`1 - sum`), worked out under the lease; it lowers its limiters before it publishes a
 * smaller share and raises them only after it published a larger one. So a replica that
 * joins takes nothing until the others have made room, one heartbeat later, and the others
 * take a dead replica's share only after the TTL. A replica that cannot write its heartbeat
 * for the TTL less two heartbeats drops to share 0 before the others could count it dead.
 *
 * Each host's budget is then divided by demand, under the same rules: every replica publishes
 * what it asks of each host (the part of the budget its requests wanted over the last seconds,
 * and whether they queue for it), and takes a max-min fair part of each host: a replica that
 * asks little gets what it asks and some room, those whose requests queue split the rest, and
 * what nobody asks for is spread evenly. So the replica left with a huge repository, or the
 * only one still filling a host, gets nearly all of that host instead of a third.
 */

import { createRequire } from "node:module";
import type { Logger } from "pino";
import type { Gauge, Registry as MetricsRegistry } from "prom-client";
import type { OperationOptions } from "../abort.js";
import { MAX_STRETCH, type StretchPeers } from "../cache/budget-stretch.js";
import { summarizeError } from "../cache/error-summary.js";
import { Keys } from "../cache/keys.js";
import type { Store, StoreEntry } from "../cache/store.js";
import type { HostWant, RateLimiters } from "../registry/http/rate-limiters.js";

/** How often a replica writes its heartbeat, by default: a joiner waits up to one for its share. */
export const DEFAULT_HEARTBEAT_MS = 1_000;
/** A replica whose heartbeat has not moved for this long is dead (five heartbeats). */
export const DEFAULT_TTL_FACTOR = 5;
/** Longest wait for one store operation of a heartbeat. */
const OP_TIMEOUT_MS = 2_000;
/** Tries at the record's lease per heartbeat before settling for a read. */
const LOCK_TRIES = 5;
/** The live replica count metric. */
export const REPLICAS_METRIC = "regscan_replicas_live";
/**
 * A replica's need of a host is what it asks times this (room to grow without waiting a
 * heartbeat), but at least a floor, so that a replica whose first requests go to a host
 * that another one fills (a webhook's scan) is not left at a trickle: the replicas that ask
 * less than `MIN_NEED` of a host keep `MIN_NEED` of it between them, not each. Each kept
 * 5% before, unused while one replica was left filling a host (a 3-replica fill's last
 * seconds ran at 90% of the Docker Hub-like registry's budget, and ten replicas would have
 * left 45% of it idle); the first request of an idle one queues, so it counts as limited
 * at its next heartbeat and gets its fair part within two.
 */
const NEED_HEADROOM = 1.5;
export const MIN_NEED = 0.05;

/** What the census knows now. */
export interface CensusView {
  /** Live replicas sharing the store, this one included (at least 1). */
  replicas: number;
  /** This replica's share of every registry budget, 0 to 1. */
  share: number;
}

/** Options of {@link ReplicaCensus}. */
export interface ReplicaCensusOptions {
  store: Store;
  /** This replica's id (the warmer's lease owner). */
  owner: string;
  /** Key prefix (default `regscan:v2:`); the record is `<prefix>replicas`. */
  prefix?: string | undefined;
  /** Heartbeat interval (default 1 s). */
  heartbeatMs?: number | undefined;
  /** A replica is dead when its heartbeat has not moved for this long (default 5 heartbeats). */
  ttlMs?: number | undefined;
  logger: Logger;
  /** Where the live replica count is published (`regscan_replicas_live`). */
  metrics?: MetricsRegistry | undefined;
  /** Milliseconds, for timing the others' heartbeats (default `Date.now`). */
  now?: (() => number) | undefined;
  /**
   * What this replica asks of each registry host now (`RateLimiters#wants`): each host's
   * budget is divided by demand. Without it every host is shared equally.
   */
  wants?: (() => ReadonlyMap<string, HostWant>) | undefined;
  /**
   * The replicas' interval stretches: this replica's own are written with its heartbeat, and
   * the largest of the live others' read back into it. Without it none are exchanged.
   */
  stretches?: StretchBoard | undefined;
}

/** A replica's entry for one host: its share, what it asks, whether its requests queue. */
interface HostEntry {
  s: number;
  w: number;
  l?: true;
}

interface Member {
  seq: number;
  share: number;
  left?: boolean;
  /** Hosts whose share is its own rather than `share`. */
  hosts?: Record<string, HostEntry>;
  /** Hosts whose intervals it stretches, and by what factor (none: 1). */
  x?: Record<string, number>;
  /** Hosts it still fills (their cold work goes on there). */
  f?: string[];
}

interface Seen {
  seq: number;
  share: number;
  left: boolean;
  hosts: Record<string, HostEntry>;
  stretches: Record<string, number>;
  filling: string[];
  /** When this replica saw the heartbeat move (its own clock). */
  changedAt: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function decodeMembers(bytes: Uint8Array | undefined): Map<string, Member> {
  const out = new Map<string, Member>();
  if (!bytes) return out;
  try {
    const parsed: unknown = JSON.parse(decoder.decode(bytes));
    const members = (parsed as { members?: unknown } | null)?.members;
    if (typeof members !== "object" || members === null) return out;
    for (const [owner, m] of Object.entries(members as Record<string, unknown>)) {
      const { seq, share, left, hosts, x, f } = (m ?? {}) as Record<string, unknown>;
      if (typeof seq !== "number" || !Number.isFinite(seq)) continue;
      if (typeof share !== "number" || !isShare(share)) continue;
      const member: Member = { seq, share };
      if (left === true) member.left = true;
      const entries = decodeHosts(hosts);
      // A member whose host shares do not decode is not trusted with any: skipped, it is
      // counted dead after the TTL like a silent one, and its next heartbeat rewrites it.
      if (entries === undefined) continue;
      if (Object.keys(entries).length > 0) member.hosts = entries;
      // Stretches that do not decode are only advice lost: the member's shares still count.
      const stretches = decodeStretches(x);
      if (stretches !== undefined && Object.keys(stretches).length > 0) member.x = stretches;
      const filling = decodeHostList(f);
      if (filling.length > 0) member.f = filling;
      out.set(owner, member);
    }
  } catch {
    // A record that does not decode is rebuilt by the next heartbeat.
  }
  return out;
}

function isShare(n: unknown): n is number {
  return typeof n === "number" && n >= 0 && n <= 1;
}

/** A member's host entries; undefined when any of them is malformed. */
function decodeHosts(raw: unknown): Record<string, HostEntry> | undefined {
  const out: Record<string, HostEntry> = {};
  if (raw === undefined) return out;
  if (typeof raw !== "object" || raw === null) return undefined;
  for (const [host, e] of Object.entries(raw as Record<string, unknown>)) {
    const { s, w, l } = (e ?? {}) as Record<string, unknown>;
    if (!isShare(s) || !isShare(w)) return undefined;
    out[host] = l === true ? { s, w, l: true } : { s, w };
  }
  return out;
}

/** A member's hosts it still fills; nothing when the list is malformed (only advice lost). */
function decodeHostList(raw: unknown): string[] {
  if (!Array.isArray(raw) || !raw.every((h) => typeof h === "string")) return [];
  return raw as string[];
}

/** A member's stretch factors (1 to MAX_STRETCH each); undefined when any is malformed. */
function decodeStretches(raw: unknown): Record<string, number> | undefined {
  if (raw === undefined) return {};
  if (typeof raw !== "object" || raw === null) return undefined;
  const out: Record<string, number> = {};
  for (const [host, f] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof f !== "number" || !(f >= 1 && f <= MAX_STRETCH)) return undefined;
    out[host] = f;
  }
  return out;
}

/**
 * The replicas' interval stretches and fills (`StretchPeers`, given to the warmer): this
 * replica's own factors and the hosts it still fills, which the census writes with each
 * heartbeat, and the largest factor of each host among the live others, and the hosts they
 * fill, which it reads back at each heartbeat. So the replicas apply one
 * interval to a host's repositories, within a heartbeat of a change, rather than each its own
 * (in bench:scale they disagreed by up to 4x, and a change was judged late by one replica's
 * interval while another's scheduled its scan).
 */
export class StretchBoard implements StretchPeers {
  readonly #own = new Map<string, number>();
  #peers: ReadonlyMap<string, number> = new Map();
  readonly #ownFilling = new Set<string>();
  #peersFilling: ReadonlySet<string> = new Set();

  publish(host: string, factor: number): void {
    if (factor > 1) this.#own.set(host, factor);
    else this.#own.delete(host);
  }

  factorOf(host: string): number {
    return this.#peers.get(host) ?? 1;
  }

  publishFilling(host: string, filling: boolean): void {
    if (filling) this.#ownFilling.add(host);
    else this.#ownFilling.delete(host);
  }

  fillingElsewhere(host: string): boolean {
    return this.#peersFilling.has(host);
  }

  /** This replica's own factors above 1 (what the census writes). */
  own(): Record<string, number> | undefined {
    return this.#own.size > 0 ? Object.fromEntries(this.#own) : undefined;
  }

  /** The hosts this replica still fills (what the census writes). */
  ownFilling(): string[] | undefined {
    return this.#ownFilling.size > 0 ? [...this.#ownFilling] : undefined;
  }

  /** Takes the live others' factors (the largest per host) and the hosts they still fill. */
  takePeers(
    others: readonly { stretches: Record<string, number>; filling?: readonly string[] }[],
  ): void {
    const peers = new Map<string, number>();
    const filling = new Set<string>();
    for (const o of others) {
      for (const [host, f] of Object.entries(o.stretches)) {
        peers.set(host, Math.max(f, peers.get(host) ?? 1));
      }
      for (const host of o.filling ?? []) filling.add(host);
    }
    this.#peers = peers;
    this.#peersFilling = filling;
  }
}

/** What a replica asks of a host's budget (see `NEED_HEADROOM`): all of it while its requests queue. */
function asked(want: HostWant | undefined): number {
  if (want === undefined) return 0;
  if (want.limited) return Number.POSITIVE_INFINITY;
  return Math.min(1, want.share * NEED_HEADROOM);
}

/**
 * The replicas' needs of one host from what they ask: those asking less than `MIN_NEED`
 * share `MIN_NEED` between them as their floor (see `MIN_NEED`).
 */
export function needsOf(asks: readonly number[]): number[] {
  const low = asks.filter((a) => a < MIN_NEED).length;
  const floor = MIN_NEED / Math.max(1, low);
  return asks.map((a) => Math.max(a, floor));
}

/**
 * Max-min fair parts of a whole (water-filling): in order of need, each gets its need or an
 * equal part of what is left, whichever is less; what is left over is spread evenly.
 */
export function fairParts(needs: readonly number[]): number[] {
  const out = needs.map(() => 0);
  const order = needs.map((n, i) => ({ n, i })).sort((a, b) => a.n - b.n);
  let left = 1;
  let k = needs.length;
  for (const { n, i } of order) {
    const part = Math.min(n, left / k);
    out[i] = part;
    left -= part;
    k--;
  }
  return needs.length > 0 ? out.map((p) => p + left / needs.length) : out;
}

function encodeMembers(members: Map<string, Member>): Uint8Array {
  return encoder.encode(JSON.stringify({ v: 1, members: Object.fromEntries(members) }));
}

/**
 * Rounds a share down to a billionth so that float sums of shares never pass 1 (by more than
 * float noise: a half that float sums made 0.49999999999999994 is still a half).
 */
function floorShare(share: number): number {
  return Math.max(0, Math.min(1, Math.floor(share * 1e9 + 1e-6) / 1e9));
}

/** The replica census of one process; see the module comment. */
export class ReplicaCensus {
  readonly #store: Store;
  readonly #owner: string;
  readonly #key: string;
  readonly #lockKey: string;
  readonly #heartbeatMs: number;
  readonly #ttlMs: number;
  readonly #lockTtlMs: number;
  readonly #opTimeoutMs: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #seen = new Map<string, Seen>();
  readonly #listeners: Array<(view: CensusView) => void> = [];
  readonly #hostListeners: Array<(shares: ReadonlyMap<string, number>) => void> = [];
  readonly #wants: (() => ReadonlyMap<string, HostWant>) | undefined;
  readonly #stretches: StretchBoard | undefined;
  #view: CensusView = { replicas: 1, share: 0 };
  /** Hosts whose share is this replica's own (by demand), in use now. */
  #hostShares: ReadonlyMap<string, number> = new Map();
  #seq = 0;
  #lastWrite: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: ReplicaCensusOptions) {
    this.#store = opts.store;
    this.#owner = opts.owner;
    const keys = new Keys(opts.prefix);
    this.#key = keys.replicas();
    this.#lockKey = keys.replicasLease();
    this.#heartbeatMs = Math.max(10, opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
    // At least three heartbeats, so that the drop to share 0 comes before the others' TTL.
    this.#ttlMs = Math.max(
      this.#heartbeatMs * 3,
      opts.ttlMs ?? this.#heartbeatMs * DEFAULT_TTL_FACTOR,
    );
    // The lease on the record outlives a heartbeat's store operations (read, write, release).
    this.#lockTtlMs = Math.floor(Math.max(1_000, Math.min(this.#ttlMs / 2, 3 * OP_TIMEOUT_MS)));
    this.#opTimeoutMs = Math.floor(Math.min(OP_TIMEOUT_MS, this.#lockTtlMs / 3));
    this.#log = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#wants = opts.wants;
    this.#stretches = opts.stretches;
    if (opts.metrics) this.#registerMetrics(opts.metrics);
  }

  /** The live replica count and this replica's share, as of the last heartbeat. */
  get view(): CensusView {
    return this.#view;
  }

  /** Calls `listener` with every new view (count or share changed). */
  onChange(listener: (view: CensusView) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * This replica's own shares of hosts, by demand (see the module comment); a host not listed
   * gets the view's `share`.
   */
  get hostShares(): ReadonlyMap<string, number> {
    return this.#hostShares;
  }

  /** This replica's share of `host` now: its own, else the view's. */
  shareOf(host: string): number {
    return this.#hostShares.get(host) ?? this.#view.share;
  }

  /** Calls `listener` with every new set of host shares. */
  onHostShares(listener: (shares: ReadonlyMap<string, number>) => void): void {
    this.#hostListeners.push(listener);
  }

  /**
   * Writes the first heartbeat (bounded by the store's timeouts; a failure is logged and
   * retried by the next one) and starts the timer.
   */
  async start(): Promise<void> {
    await this.beat();
    if (this.#stopped) return;
    this.#timer = setInterval(() => void this.beat(), this.#heartbeatMs);
    this.#timer.unref();
  }

  /**
   * Stops heartbeating and writes this replica out of the record, so that the others take
   * its share back at their next heartbeat instead of after the TTL (best effort, bounded).
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#beating;
    this.#apply({ replicas: this.#view.replicas, share: 0 });
    this.#applyHosts(zeroed(this.#hostShares));
    try {
      await this.#update(true);
    } catch (error) {
      this.#log.warn(
        { error: summarizeError(error) },
        "could not write this replica out of the census; the others count it out after the TTL",
      );
    }
  }

  /**
   * One heartbeat (the timer's; exposed for tests). Never rejects. After `stop()` it does
   * nothing: a heartbeat then would write the replica back into the record.
   */
  beat(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#beating) return this.#beating;
    const run = (async () => {
      try {
        await this.#update(false);
      } catch (error) {
        this.#log.warn({ error: summarizeError(error) }, "replica census heartbeat failed");
      }
      // Out of touch long enough that the others may soon count this replica dead and take
      // its share: give it up first.
      const last = this.#lastWrite;
      const stale = this.#ttlMs - 2 * this.#heartbeatMs;
      if (!this.#stopped && (last === undefined || this.#now() - last >= stale)) {
        if (this.#view.share > 0 && last !== undefined) {
          this.#log.warn(
            { sinceMs: this.#now() - last },
            "replica census: no heartbeat written for too long; this replica stops using the registry budgets until it can write one",
          );
        }
        this.#apply({ replicas: this.#view.replicas, share: 0 });
        this.#applyHosts(zeroed(this.#hostShares));
      }
    })();
    this.#beating = run.finally(() => {
      this.#beating = undefined;
    });
    return this.#beating;
  }

  async #update(leaving: boolean): Promise<void> {
    const op = () => ({ signal: AbortSignal.timeout(this.#opTimeoutMs) });
    const { locked, got } = await this.#lockAndRead(op);
    const lockedAt = this.#now();
    let released = false;
    try {
      const members = decodeMembers(got?.value);
      const now = this.#now();
      const others = this.#observe(members, now);
      this.#stretches?.takePeers(others);
      const replicas = 1 + others.length;
      const othersShare = others.reduce((sum, m) => sum + m.share, 0);
      const fair = floorShare(Math.min(1 / replicas, 1 - othersShare));
      const wants = this.#wants?.() ?? new Map<string, HostWant>();
      const fairHosts = this.#fairHostShares(others, wants);
      if (!locked) {
        // Without the lease only a smaller share is safe: the others may be changing theirs.
        this.#apply({ replicas, share: Math.min(this.#view.share, fair) });
        this.#applyHosts(this.#lowered(fairHosts));
        return;
      }
      const share = leaving ? 0 : fair;
      const hostShares = leaving ? zeroed(fairHosts) : fairHosts;
      // A smaller share is used before it is published, a larger one only after.
      if (share < this.#view.share) this.#apply({ replicas, share });
      this.#applyHosts(this.#lowered(hostShares));
      const own = members.get(this.#owner);
      this.#seq = Math.max(this.#seq, own?.seq ?? 0) + 1;
      const mine: Member = { seq: this.#seq, share };
      if (leaving) mine.left = true;
      const stretches = leaving ? undefined : this.#stretches?.own();
      if (stretches) mine.x = stretches;
      const filling = leaving ? undefined : this.#stretches?.ownFilling();
      if (filling) mine.f = filling;
      if (hostShares.size > 0) {
        mine.hosts = {};
        for (const [host, s] of hostShares) {
          const want = wants.get(host);
          const entry: HostEntry = { s, w: floorShare(want?.share ?? 0) };
          if (want?.limited) entry.l = true;
          mine.hosts[host] = entry;
        }
      }
      members.set(this.#owner, mine);
      for (const owner of [...members.keys()]) {
        if (owner !== this.#owner && !this.#isLive(owner, now) && this.#isOld(owner, now)) {
          members.delete(owner);
        }
      }
      // Lease nearly out: another replica may be writing now; skip rather than overwrite.
      if (this.#now() - lockedAt > this.#lockTtlMs - 2 * this.#opTimeoutMs) return;
      const write = {
        key: this.#key,
        deadline: new Date(now + this.#ttlMs),
        value: encodeMembers(members),
      };
      if (this.#store.setAndRelease) {
        await this.#store.setAndRelease(write, { key: this.#lockKey, owner: this.#owner }, op());
        released = true;
      } else {
        await this.#store.set(write.key, write.deadline, write.value, op());
      }
      this.#lastWrite = now;
      if (!leaving) {
        this.#apply({ replicas, share });
        this.#applyHosts(hostShares);
      }
    } finally {
      if (locked && !released) {
        await this.#store.release(this.#lockKey, this.#owner, op()).catch(() => {
          // It expires by itself.
        });
      }
    }
  }

  /**
   * Takes the record's lease (a few tries) and reads the record: under the lease when it was
   * taken, else as it stands. Where the store does both in one round trip (Redis) each try
   * is one: at load 7 on 2 cores each round trip of a heartbeat waited for a busy event loop,
   * and four of them (more when the lease was held) left 3 to 5.7 s between heartbeats in a
   * bench:scale run at 2,000,000 tags, enough to drop a replica to share 0.
   */
  async #lockAndRead(
    op: () => OperationOptions,
  ): Promise<{ locked: boolean; got: StoreEntry | undefined }> {
    const lease = { key: this.#lockKey, ttlMs: this.#lockTtlMs, owner: this.#owner };
    for (let i = 0; ; i++) {
      if (this.#store.acquireAndGet) {
        const read = await this.#store.acquireAndGet(lease, this.#key, op());
        if (read.taken || i === LOCK_TRIES - 1) return { locked: read.taken, got: read.entry };
      } else {
        const locked = await this.#store.acquire(lease.key, lease.ttlMs, lease.owner, op());
        if (locked || i === LOCK_TRIES - 1) {
          return { locked, got: await this.#store.get(this.#key, op()) };
        }
      }
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
    }
  }

  /** Notes the others' heartbeats; returns the live ones (with their published shares). */
  #observe(members: Map<string, Member>, now: number): Seen[] {
    for (const [owner, m] of members) {
      if (owner === this.#owner) continue;
      const seen = this.#seen.get(owner);
      const left = m.left === true;
      if (!seen || seen.seq !== m.seq || seen.left !== left) {
        this.#seen.set(owner, {
          seq: m.seq,
          share: m.share,
          left,
          hosts: m.hosts ?? {},
          stretches: m.x ?? {},
          filling: m.f ?? [],
          changedAt: now,
        });
      }
    }
    const live: Seen[] = [];
    for (const [owner, seen] of this.#seen) {
      // Remembered past the TTL only while the record still lists it.
      if (!members.has(owner) && now - seen.changedAt >= this.#ttlMs) this.#seen.delete(owner);
      else if (this.#isLive(owner, now)) live.push(seen);
    }
    return live;
  }

  #isLive(owner: string, now: number): boolean {
    const seen = this.#seen.get(owner);
    return seen !== undefined && !seen.left && now - seen.changedAt < this.#ttlMs;
  }

  /** Dead or gone for a whole TTL: the record can forget it. */
  #isOld(owner: string, now: number): boolean {
    const seen = this.#seen.get(owner);
    return seen === undefined || now - seen.changedAt >= this.#ttlMs;
  }

  /**
   * This replica's fair share of every host that it or a live replica has asked of: its
   * max-min fair part by need, but never more than the others' published shares leave.
   */
  #fairHostShares(others: readonly Seen[], wants: ReadonlyMap<string, HostWant>) {
    const hosts = new Set<string>(wants.keys());
    for (const o of others) for (const host of Object.keys(o.hosts)) hosts.add(host);
    const out = new Map<string, number>();
    for (const host of hosts) {
      const asks = [asked(wants.get(host))];
      for (const o of others) {
        const e = o.hosts[host];
        asks.push(asked(e === undefined ? undefined : { share: e.w, limited: e.l === true }));
      }
      const part = fairParts(needsOf(asks))[0] ?? 0;
      const othersUse = others.reduce((sum, o) => sum + (o.hosts[host]?.s ?? o.share), 0);
      out.set(host, floorShare(Math.min(part, 1 - othersUse)));
    }
    return out;
  }

  /** `next`, but no host above the share it has now: what is safe before publishing. */
  #lowered(next: ReadonlyMap<string, number>): Map<string, number> {
    const out = new Map<string, number>();
    for (const [host, s] of next) out.set(host, Math.min(s, this.shareOf(host)));
    return out;
  }

  #applyHosts(shares: ReadonlyMap<string, number>): void {
    const same =
      shares.size === this.#hostShares.size &&
      [...shares].every(([host, s]) => this.#hostShares.get(host) === s);
    if (same) return;
    this.#hostShares = shares;
    this.#log.debug({ owner: this.#owner, hosts: Object.fromEntries(shares) }, "host shares");
    for (const listener of this.#hostListeners) listener(shares);
  }

  #apply(view: CensusView): void {
    if (view.replicas === this.#view.replicas && view.share === this.#view.share) return;
    this.#view = view;
    this.#log.info(
      { owner: this.#owner, replicas: view.replicas, share: Math.round(view.share * 1000) / 1000 },
      `replica census: ${view.replicas} live replica(s) share the registry budgets; this one uses ${Math.round(view.share * 1000) / 10}% of each`,
    );
    for (const listener of this.#listeners) listener(view);
  }

  #registerMetrics(register: MetricsRegistry): void {
    if (register.getSingleMetric(REPLICAS_METRIC) !== undefined) return;
    const prom = createRequire(import.meta.url)("prom-client") as typeof import("prom-client");
    const replicas = () => this.#view.replicas;
    new prom.Gauge({
      name: REPLICAS_METRIC,
      help: "Live regscan replicas sharing the store, and so the registries' request budgets (this one included).",
      registers: [register],
      collect(this: Gauge) {
        this.set(replicas());
      },
    });
  }
}

/** Every host at share 0. */
function zeroed(shares: ReadonlyMap<string, number>): Map<string, number> {
  return new Map([...shares.keys()].map((host) => [host, 0]));
}

/** What {@link shareBudgets} wires. */
export interface ShareBudgetsOptions {
  store: Store;
  /** This replica's id (the warmer's lease owner). */
  owner: string;
  /** The budgets to share; none when the daemon was given a client factory (tests). */
  limiters: Pick<RateLimiters, "setShare" | "setHostShares" | "wants"> | undefined;
  logger: Logger;
  metrics: MetricsRegistry;
  heartbeatMs?: number | undefined;
  /** The replicas' interval stretches, shared with the warmer (see {@link StretchBoard}). */
  stretches?: StretchBoard | undefined;
}

/**
 * Starts the census of the replicas on `store` and keeps `limiters`' share of every registry
 * budget to this replica's share. Until the first heartbeat is written the share is 0 (the
 * warmer cannot work without the store either); `stop()` the census when the daemon stops.
 */
export async function shareBudgets(opts: ShareBudgetsOptions): Promise<ReplicaCensus> {
  const census = new ReplicaCensus({
    store: opts.store,
    owner: opts.owner,
    heartbeatMs: opts.heartbeatMs,
    logger: opts.logger.child({ component: "census" }),
    metrics: opts.metrics,
    wants: opts.limiters && (() => opts.limiters?.wants() ?? new Map()),
    stretches: opts.stretches,
  });
  const limiters = opts.limiters;
  if (limiters) {
    limiters.setShare(census.view.share);
    census.onChange((view) => limiters.setShare(view.share));
    census.onHostShares((shares) => limiters.setHostShares(shares));
  }
  await census.start();
  return census;
}
