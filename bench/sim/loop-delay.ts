/**
 * How late the simulator's event loop ran, so that a run can tell whether the simulator
 * stalled. The registries count each request when its handler runs: requests that arrive
 * while the loop is blocked (a long GC pause, synchronous work, the process descheduled on
 * a busy machine) are counted together when it runs again, and a client that kept to its
 * budget then seems to have gone over it in a 10 s window.
 *
 * A timer every 50 ms measures how late it fires (the loop was busy all that time); delays
 * of 100 ms or more are kept as stalls with when they began, and GC pauses are summed by
 * kind from the `gc` performance entries (the final pauses only: incremental marking steps
 * show as loop delay).
 */
import { constants, type PerformanceEntry, PerformanceObserver } from "node:perf_hooks";

const TICK_MS = 50;
/** A delay at least this long is kept as a stall. */
const STALL_MS = 100;
/** The figure a run is judged by: stalls this long move a second's requests into the next. */
const LONG_STALL_MS = 250;
/** Stalls kept (the oldest dropped first). */
const KEPT_STALLS = 1000;

/**
 * One stall: when the loop stopped answering (epoch ms), for how long, the CPU time the
 * process used meanwhile (all its threads), and how much of it GC pauses took: CPU close to
 * `ms` or more, it was busy (a GC pause, synchronous work); far less, it did not run (waiting
 * for a CPU, or a GC pause waiting for its helper threads, which `gcMs` then shows).
 */
export interface Stall {
  at: number;
  ms: number;
  cpuMs: number;
  gcMs: number;
}

/** A stall or GC pause on the performance timeline (ms). */
interface Span {
  from: number;
  to: number;
}

/** Stalls and GC pauses kept to match each other (a GC entry arrives after its pause). */
const MATCHED = 32;

function overlap(a: Span, b: Span): number {
  return Math.max(0, Math.min(a.to, b.to) - Math.max(a.from, b.from));
}

interface Pauses {
  count: number;
  ms: number;
  maxMs: number;
}

/** What `snapshot` reports. */
export interface LoopDelaySnapshot {
  /** The timer's period: delays shorter than this are not seen. */
  tickMs: number;
  /** The longest delay since the start. */
  maxMs: number;
  /** Stalls of 250 ms or more since the start. */
  stallsOver250Ms: number;
  /** Stalls of 100 ms or more within the window asked for, oldest first. */
  stalls: Stall[];
  /** GC pauses since the start (mark-compact and scavenges). */
  gc: { major: Pauses; minor: Pauses };
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function zero(): Pauses {
  return { count: 0, ms: 0, maxMs: 0 };
}

export class LoopDelayMonitor {
  readonly #stalls: Stall[] = [];
  readonly #gc = { major: zero(), minor: zero() };
  #timer: NodeJS.Timeout | undefined;
  #observer: PerformanceObserver | undefined;
  #expected = 0;
  /** The process's CPU time (user + system, µs) at the last tick. */
  #cpu = 0;
  #maxMs = 0;
  #longStalls = 0;
  /** The latest stalls (with their Stall, whose gcMs grows as GC entries arrive) and pauses. */
  readonly #recentStalls: Array<{ span: Span; stall: Stall }> = [];
  readonly #recentPauses: Span[] = [];

  start(): void {
    if (this.#timer !== undefined) return;
    this.#expected = performance.now() + TICK_MS;
    this.#cpu = cpuMicros();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    // Never what keeps the process alive.
    this.#timer.unref();
    this.#observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) this.#pause(entry);
    });
    this.#observer.observe({ entryTypes: ["gc"] });
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#observer?.disconnect();
    this.#observer = undefined;
  }

  #tick(): void {
    const now = performance.now();
    const late = now - this.#expected;
    const cpu = cpuMicros();
    // Since the last tick: the stall and the period before it, so at most a tick more.
    const cpuMs = (cpu - this.#cpu) / 1000;
    this.#cpu = cpu;
    // setInterval does not catch up on missed ticks: the next one is due a period from now.
    this.#expected = now + TICK_MS;
    if (late < STALL_MS) {
      if (late > this.#maxMs) this.#maxMs = late;
      return;
    }
    const span = { from: now - late, to: now };
    let gcMs = 0;
    for (const p of this.#recentPauses) gcMs += overlap(span, p);
    if (late > this.#maxMs) this.#maxMs = late;
    if (late >= LONG_STALL_MS) this.#longStalls++;
    const stall = {
      at: Math.round(Date.now() - late),
      ms: Math.round(late),
      cpuMs: Math.round(cpuMs),
      gcMs: Math.round(gcMs),
    };
    this.#stalls.push(stall);
    if (this.#stalls.length > KEPT_STALLS)
      this.#stalls.splice(0, this.#stalls.length - KEPT_STALLS);
    this.#recentStalls.push({ span, stall });
    if (this.#recentStalls.length > MATCHED) this.#recentStalls.shift();
  }

  #pause(entry: PerformanceEntry): void {
    const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    const p =
      kind === constants.NODE_PERFORMANCE_GC_MAJOR
        ? this.#gc.major
        : kind === constants.NODE_PERFORMANCE_GC_MINOR
          ? this.#gc.minor
          : undefined;
    if (p === undefined) return;
    p.count++;
    p.ms += entry.duration;
    if (entry.duration > p.maxMs) p.maxMs = entry.duration;
    // A stall already recorded gets its share of this pause now; a later one when recorded.
    const span = { from: entry.startTime, to: entry.startTime + entry.duration };
    for (const r of this.#recentStalls) r.stall.gcMs += Math.round(overlap(r.span, span));
    this.#recentPauses.push(span);
    if (this.#recentPauses.length > MATCHED) this.#recentPauses.shift();
  }

  /** The figures, with the stalls that began at or after `since` (epoch ms). */
  snapshot(since = 0): LoopDelaySnapshot {
    const round = (p: Pauses): Pauses => ({
      count: p.count,
      ms: Math.round(p.ms),
      maxMs: Math.round(p.maxMs * 10) / 10,
    });
    return {
      tickMs: TICK_MS,
      maxMs: Math.round(this.#maxMs),
      stallsOver250Ms: this.#longStalls,
      stalls: this.#stalls.filter((s) => s.at >= since),
      gc: { major: round(this.#gc.major), minor: round(this.#gc.minor) },
    };
  }
}
