/**
 * The warmer's thread at a lower CPU priority than the API thread (`server.warmerNice`), so
 * that on cores the fill keeps busy a read waits for less than a warmer's turn. On Linux a
 * nice value belongs to a thread: the main thread (the warmer's) is lowered alone, after
 * the API thread has started at the process's priority.
 *
 * A thread inherits the nice value of the thread that starts it, and a process without
 * CAP_SYS_NICE (or a raised RLIMIT_NICE, systemd's `LimitNICE=`) cannot raise one back: a
 * restarted API thread is started at the warmer's priority unless the main thread may be
 * raised for the moment of the start, and then a log line says so.
 */
import { getPriority, setPriority } from "node:os";
import type { Logger } from "pino";

/** Lowers the calling (main) thread and starts threads at its former priority, if it may. */
export class WarmerPriority {
  readonly #logger: Logger;
  readonly #original: number;
  readonly #lowered: number;
  #applied = false;

  private constructor(logger: Logger, original: number, lowered: number) {
    this.#logger = logger;
    this.#original = original;
    this.#lowered = lowered;
  }

  /**
   * Lowers this thread to `nice` (never raises it: a process started at a higher nice value
   * keeps it). Elsewhere than on Linux a nice value is the whole process's, the API thread's
   * too: nothing is changed there, and a log line says so when `nice` asked for a change.
   */
  static lower(nice: number, logger: Logger): WarmerPriority {
    const original = getPriority(0);
    const priority = new WarmerPriority(logger, original, Math.max(original, nice));
    if (priority.#lowered === original) return priority;
    if (process.platform !== "linux") {
      logger.info(
        { warmerNice: nice, platform: process.platform },
        "the warmer's thread keeps the process's priority: a thread's own is Linux's",
      );
      return priority;
    }
    try {
      setPriority(0, priority.#lowered);
      priority.#applied = true;
      logger.debug({ nice: priority.#lowered }, "the warmer's thread lowered");
    } catch (err) {
      logger.warn(
        { nice: priority.#lowered, err: { message: (err as Error).message } },
        "could not lower the warmer's thread",
      );
    }
    return priority;
  }

  /** The nice value of the warmer's thread now (the process's where it was not lowered). */
  get nice(): number {
    return this.#applied ? this.#lowered : this.#original;
  }

  /**
   * Runs `start` (which starts a thread) with this thread at its former priority when it
   * may be raised for the moment, so the new thread gets that priority; otherwise the new
   * thread runs at the warmer's, and a warning says so.
   */
  startThread<T>(start: () => T): T {
    if (!this.#applied) return start();
    try {
      setPriority(0, this.#original);
    } catch {
      this.#logger.warn(
        { nice: this.#lowered },
        "a thread starts at the warmer's lowered priority: this process may not raise it back (CAP_SYS_NICE or RLIMIT_NICE; systemd: LimitNICE=)",
      );
      return start();
    }
    try {
      return start();
    } finally {
      this.#lower();
    }
  }

  /** Gives this thread its former priority back, if it may (a daemon stopping in a process that goes on). */
  restore(): void {
    if (!this.#applied) return;
    try {
      setPriority(0, this.#original);
      this.#applied = false;
    } catch {
      // Unprivileged: the thread keeps the lower priority for the rest of the process.
    }
  }

  #lower(): void {
    try {
      setPriority(0, this.#lowered);
    } catch (err) {
      this.#applied = false;
      this.#logger.warn(
        { nice: this.#lowered, err: { message: (err as Error).message } },
        "could not lower the warmer's thread again",
      );
    }
  }
}
