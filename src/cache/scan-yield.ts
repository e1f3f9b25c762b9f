/**
 * A long loop scan gives its repository's lease up to a refresh waiting for it (a webhook's
 * tags). The refresh asks through the store when another warmer holds the lease, or this
 * warmer's own loop directly; the scan, once it has run a while, stops as a stopped scan
 * does (what it did is written) and the loop scans the repository again soon after, reusing
 * the listing it just made. Without this, a webhook for a repository of 20,000 tags waited
 * for another replica's poll of every one of them: minutes at a registry's budget.
 */
import { RegscanError } from "../errors.js";
import type { ImageName } from "../image/ref.js";
import type { WarmContext } from "./warm-context.js";

/** How long a loop scan runs before an ask stops it (shorter ones are let finish). */
export const DEFAULT_YIELD_AFTER_MS = 10_000;
/** How often a long scan looks for an ask: its own warmer's at once, the store's each time. */
const CHECK_EVERY_MS = 1_000;
/** How long an ask in the store lasts: a waiting refresh asks again at each of its retries. */
const ASK_TTL_MS = 30_000;
/** Bound on the store read of an ask. */
const READ_TIMEOUT_MS = 2_000;

/** Why a loop scan stopped: a refresh asked for its repository's lease. */
export class ScanYieldedError extends RegscanError {
  readonly code = "SCAN_YIELDED";
  constructor(
    readonly repository: string,
    /** The warmer that asked, when the ask came through the store. */
    readonly to: string | undefined,
  ) {
    super(
      `stopped the scan of ${repository} for a refresh waiting for its lease${to === undefined ? "" : ` (${to})`}; it is scanned again soon`,
    );
  }
}

/** An ask as stored: when it was made and by whom. */
interface YieldAsk {
  at: number;
  by: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function decodeAsk(bytes: Uint8Array): YieldAsk | undefined {
  try {
    const v: unknown = JSON.parse(decoder.decode(bytes));
    if (typeof v !== "object" || v === null) return undefined;
    const { at, by } = v as Record<string, unknown>;
    return typeof at === "number" && typeof by === "string" ? { at, by } : undefined;
  } catch {
    return undefined;
  }
}

/** Asks whoever scans `name` now to give its lease up (see the module comment). */
export async function askToYield(
  ctx: WarmContext,
  name: ImageName,
  signal?: AbortSignal,
): Promise<void> {
  const now = ctx.now();
  const ask: YieldAsk = { at: now, by: ctx.owner };
  await ctx.store.set(
    ctx.keys.yieldAsk(name),
    new Date(now + ASK_TTL_MS),
    encoder.encode(JSON.stringify(ask)),
    { signal },
  );
}

/** What {@link watchForYield} watches. */
export interface YieldWatch {
  ctx: WarmContext;
  name: ImageName;
  /** When the scan began, on the context's clock: older asks were for an earlier scan. */
  startedAt: number;
  /** How long the scan runs before an ask stops it (ms). */
  afterMs: number;
  /** Aborted when this warmer's own refresh asks. */
  local?: AbortSignal | undefined;
  /** Stops the scan. */
  stop: (reason: ScanYieldedError) => void;
}

/**
 * Watches a loop scan for asks to yield and stops it through `stop` on the first one once it
 * has run `afterMs`: its own warmer's, or one in the store made after the scan began by
 * another warmer. Returns what ends the watch (call it when the scan ends).
 */
export function watchForYield(w: YieldWatch): () => void {
  const begun = performance.now();
  const repository = w.name.toString();
  let reading = false;
  let done = false;
  const yieldTo = (to: string | undefined) => {
    if (done) return;
    end();
    w.stop(new ScanYieldedError(repository, to));
  };
  const look = async () => {
    if (done || reading || performance.now() - begun < w.afterMs) return;
    if (w.local?.aborted) return yieldTo(undefined);
    reading = true;
    try {
      const got = await w.ctx.store.get(w.ctx.keys.yieldAsk(w.name), {
        signal: AbortSignal.timeout(READ_TIMEOUT_MS),
      });
      const ask = got && decodeAsk(got.value);
      if (ask && ask.at >= w.startedAt && ask.by !== w.ctx.owner) yieldTo(ask.by);
    } catch {
      // Best effort: the next look asks again, and the refresh waits as before.
    } finally {
      reading = false;
    }
  };
  const timer = setInterval(() => void look(), CHECK_EVERY_MS);
  timer.unref();
  const onLocal = () => void look();
  w.local?.addEventListener("abort", onLocal, { once: true });
  function end(): void {
    done = true;
    clearInterval(timer);
    w.local?.removeEventListener("abort", onLocal);
  }
  return end;
}
