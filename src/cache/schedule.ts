/**
 * The warmer's schedule (issue 13): every watched repository with its own due time (its
 * last scan plus its paced and stretched interval), priority requests first, then the most
 * overdue repository whose registry host has room. The lookup only adds and removes
 * repositories; it no longer decides when they are scanned.
 *
 * "Most overdue" is how long past its due time a repository is, weighted by how likely it
 * is to have changed: a scan finds on average (time overdue) x (change rate) changes, and
 * the change rate is estimated by the repository's pace (1 for one that changed recently,
 * 1/8 for one quiet long enough to be listed eight times less often). A repository never
 * scanned is as overdue as can be: nothing of it is cached yet; so is, once due, one whose
 * lease another warmer held at the last look (the look is cheap, and if the holder died its
 * repository is taken over at once instead of after this warmer's fill backlog).
 *
 * The weighting is only for repositories that are merely due. Every repository is promised
 * a listing within its interval plus a slack (the lease TTL: issue 13's "never unscanned
 * longer than lease TTL + interval"), and its due time already is its last listing plus its
 * interval (the pace's back-off included). So one that has waited `lateAfterMs` (part of
 * the slack) past its due time is late: it goes ahead of every merely-due one, the most
 * overdue first (all share the slack, so that is the earliest deadline first). Weighted
 * alone, a backed-off repository (weight 1/8) starved behind busy ones for as long as the
 * budget was saturated: eight times their lateness before its turn, well past its bound.
 *
 * A late repository also starts on a host already at its cap (up to `latePerHostConcurrency`:
 * the warmer's number of workers), the warmer starts it even when every worker is busy (in
 * an urgent lane of as many again, which priority requests share; its regular lane keeps a
 * floor, see `urgentInFlight`), and its listing goes ahead of other scans' requests at the
 * host's rate limiter: the cap bounds how many of a host's scans wait on its rate limiter
 * at once, and at a saturated budget a small repository's scan takes seconds of waits
 * there, so four slots held by a huge repository's polling scan and three small ones let a
 * burst of repositories falling due together (a fill's scans, all rescanned an interval
 * later) queue for their turn for longer than the slack (test:scale with a lease TTL of
 * 5 s: 7-9 s late at the cap, one repository 5.4 s over its bound; still 6 s at twice the
 * cap, the scans slower for the longer queue). Started at once and listed ahead, a late repository is
 * listed within moments of turning late, whatever the host's queue.
 *
 * A take that can find work looks at every waiting repository once scanned (a linear pass):
 * ranks change as the clock moves, so no heap order would hold. But the warmer's loop asks
 * every lane at each turn, and turns come with every finished scan and every look of its
 * brake: at 10,000 repositories those passes were a tenth of a replica's CPU during a fill
 * (a profile of bench:scale at 2,000,000 tags). So the earliest time each lane can find
 * work is kept until the schedule changes (a take, a finished scan, a request, a lookup),
 * and a take before it returns at once; priority requests are kept apart, found without a
 * pass. Repositories never scanned are not in the pass either (the passes were still 8.3%
 * of a replica's CPU mid-fill, a profile at 2,000,000 tags): they all rank
 * alike but for their host and order of arrival, and weigh nothing yet, so whether one may
 * start depends on its host alone, and each host's first one waiting stands for all of
 * them (each host keeps them in order of arrival). While one of them may start, a take
 * looks among the scanned only at lease retries (the one kind that ranks as high).
 *
 * What scans hold in memory follows their repositories' sizes: a scan keeps its listing, its
 * index and what it is refreshing, about 500 bytes a tag (a heap snapshot of a replica at
 * 2,000,000 tags: 34 scans in flight held 58 MB of a 123 MB heap, and the replica ran out of
 * its 128 MiB a minute later). So each repository weighs its tags (as last listed; unknown,
 * 0, until its first listing, when the scan reports it), and a repository starts only while
 * the weight in flight stays within `maxWeightInFlight`, or while nothing heavy (over a 64th
 * of the bound) is in flight; one larger than the bound counts as three quarters of it, so
 * that small ones go on beside it. The most urgent one that does not fit is reserved: other
 * heavy ones start only if they leave it room, so it starts as soon as enough scans end
 * rather than never (a stream of smaller ones would keep the room it needs taken). Light
 * ones need not leave it room: a cold fill's repositories weigh nothing until listed, and
 * most are small; holding them back for one huge rescan would idle every other host's
 * budget. For the same reason a light one (or one never listed) starts over the bound on a
 * host with nothing in flight: in bench:scale's full run a replica's cold scans turned out
 * large on other hosts (60,700-86,700 tags in flight against 60,000) and it started nothing
 * on the Docker Hub-like host, the one that bounds the fill, for 17 minutes. That is at most
 * one such scan per host. Priority requests are never held: they are a few tags each.
 */

/** A repository taken from the schedule, to scan now. */
export interface ScheduledItem {
  /** Canonical repository name. */
  name: string;
  /** The registry host it counts against. */
  host: string;
  /** A priority request (an API refresh or a webhook): scan it even if fresh. */
  priority: boolean;
  /** Taken late against its bound (see the module comment): its listing should not queue. */
  late: boolean;
  /**
   * A priority request that named tags (a registry webhook): only these, and tags not yet
   * in the index, are checked. Undefined: every tag.
   */
  onlyTags?: string[];
  /**
   * With `onlyTags`: every request for this scan named pushed tags, so they may be refreshed
   * without listing the repository (see `WarmJob.skipListing`).
   */
  skipListing?: true;
}

/** When a finished repository falls due again, and how likely it is to change by then. */
export interface NextScan {
  /** When it is due (ms, the schedule's clock). */
  dueAt: number;
  /** How likely it is to have changed, in (0, 1]: the weight of its time overdue. */
  likelihood: number;
  /** Its tags as the scan found them (undefined: as before), what its next scan will hold. */
  weight?: number | undefined;
  /**
   * The scan ran here (listed and checked its tags; not skipped for another warmer's lease,
   * nor a check of pushed tags alone): it counts in its host's cost per scan (see
   * `#spreadsBetter`).
   */
  ran?: boolean | undefined;
  /**
   * Another warmer held its lease: once due, look again ahead of regular work, as if never
   * scanned (a look costs store round trips; a dead holder's repository is taken over, and
   * behind this warmer's never-scanned backlog of a fill it waited tens of seconds).
   */
  retryLease?: boolean | undefined;
  /**
   * No scan of it is known to have ended anywhere: another warmer held its lease and the
   * store has no record of it yet (its first scan is that warmer's). It still counts as the
   * host's cold work ({@link Schedule.hasColdWork}), though this warmer has looked at it.
   */
  unscanned?: boolean | undefined;
}

/** How the schedule is set up. */
export interface ScheduleOptions {
  /** The registry host a canonical repository name counts against. */
  hostOf: (name: string) => string;
  /**
   * Repositories of one host in flight at once (at least 1). Priority requests start even
   * when their host is full (they are a few requests, and waiting for a huge repository's
   * scan would make a webhook's refresh wait minutes); they count towards it.
   */
  perHostConcurrency: number;
  /**
   * Repositories of one host in flight at once when a late one starts (default twice
   * `perHostConcurrency`, never less than it): the warmer passes its number of workers, so
   * that a burst of late repositories of one host all start (their listings go ahead at the
   * rate limiter), while the warmer's regular lane still goes on with the other hosts' work.
   */
  latePerHostConcurrency?: number | undefined;
  /**
   * How long past its due time a repository waits before it is late and goes ahead of the
   * merely due, ms (see the module comment; default: never, weights alone). The warmer
   * passes part of the lease TTL, the slack each repository's bound leaves.
   */
  lateAfterMs?: number | undefined;
  /**
   * Weight (tags) of the repositories in flight at once (see the module comment; default:
   * unbounded). A repository heavier than this counts as three quarters of it.
   */
  maxWeightInFlight?: number | undefined;
  /** Told the weight in flight ({@link Schedule.weightInFlight}) whenever it changes. */
  onWeightChange?: ((weight: number) => void) | undefined;
  /** Told when a host's cold work starts or ends ({@link Schedule.hasColdWork} changes). */
  onColdChange?: ((host: string, cold: boolean) => void) | undefined;
  /**
   * The registry requests made so far to the host of repository `name`, and the rate its
   * budget allows this process now: with the scans that ran, a host's cost per scan in
   * seconds of its budget (see `#spreadsBetter`). Without it, every host costs the same.
   */
  hostCost?:
    | ((name: string) => { requests: number; rateRps?: number | undefined } | undefined)
    | undefined;
}

/** Repositories of one host in flight, and its cold fill: shared by its entries, read at every pass. */
interface HostLoad {
  inFlight: number;
  /** Watched repositories never scanned (waiting or in flight): its cold work. */
  cold: number;
  /** Scans of it that ran here (`NextScan.ran`). */
  scans: number;
  /**
   * As of its last scan's end: the seconds of its budget its requests so far took, and the
   * scans they were for (those in flight then counted as half done).
   */
  spent: number;
  spentOn: number;
  /**
   * Its repositories never scanned here (due time minus infinity), in order of arrival from
   * `firstScansHead` on: a pass looks at the first one waiting (see the module comment).
   * Those scanned or forgotten since are dropped when they reach the head.
   */
  firstScans: Entry[];
  firstScansHead: number;
}

interface Entry {
  name: string;
  host: string;
  /** Its host's load (a property read per entry in a pass, not a lookup by host name). */
  load: HostLoad;
  /** When it falls due; minus infinity while never scanned. */
  dueAt: number;
  likelihood: number;
  /** Another warmer held its lease at the last look (see {@link NextScan.retryLease}). */
  retryLease: boolean;
  /**
   * Never scanned, here or (as far as this warmer knows) by another warmer: part of its
   * host's cold fill. Set when added; cleared by a `done` unless it says `unscanned`.
   */
  cold: boolean;
  /** Order of arrival, to break ties (never-scanned repositories in lookup order). */
  seq: number;
  inFlight: boolean;
  /** Taken with `urgentOnly` or `priorityOnly`: in flight in the warmer's urgent lane. */
  urgent: boolean;
  /** Still returned by the lookup (an entry dropped mid-scan leaves when its scan ends). */
  watched: boolean;
  /** Dropped from the schedule (a host's `firstScans` may still hold it). */
  gone: boolean;
  /**
   * Its tags as last known (see the module comment): what its scan holds in memory, counted
   * in {@link Schedule.weightInFlight} while it is in flight.
   */
  weight: number;
  /** Order of the waiting priority request; undefined when none waits. */
  prioritySeq: number | undefined;
  /** Tags named by the priority requests waiting; undefined means every tag. */
  priorityTags: Set<string> | undefined;
  /** Whether a waiting priority request needs the listing (not only its named tags). */
  priorityListing: boolean;
}

/** Due-time queue of repositories, with a priority lane and a per-host cap. */
export class Schedule {
  readonly #hostOf: (name: string) => string;
  readonly #perHost: number;
  readonly #latePerHost: number;
  readonly #lateAfterMs: number;
  readonly #onColdChange: ((host: string, cold: boolean) => void) | undefined;
  readonly #onWeightChange: ((weight: number) => void) | undefined;
  readonly #entries = new Map<string, Entry>();
  /** Entries scanned at least once (a finite due time): what a pass visits one by one. */
  readonly #scanned = new Set<Entry>();
  /** Of those, the ones whose lease another warmer held at the last look (`retryLease`). */
  readonly #retrying = new Set<Entry>();
  readonly #hosts = new Map<string, HostLoad>();
  readonly #hostCost: ScheduleOptions["hostCost"];
  /** The hosts' cost per scan, pooled (1 while no scan ran): what a host's own is drawn towards. */
  #meanScanCost = 1;
  #urgentInFlight = 0;
  readonly #maxWeight: number;
  /** Weights of a 64th of the bound or less need no room left for the reserved repository. */
  readonly #lightWeight: number;
  #weightInFlight = 0;
  /** Repositories in flight heavier than light: none, and a heavy one may start alone. */
  #heavyInFlight = 0;
  /** The most urgent waiting repository that did not fit (see the module comment). */
  #reserved: Entry | undefined;
  readonly #waiters = new Set<() => void>();
  #seq = 0;
  /** Reused by every take (a pass allocates nothing). */
  readonly #takePass: TakePass = {
    best: undefined,
    bestScore: Number.NEGATIVE_INFINITY,
    unfit: undefined,
    unfitScore: Number.NEGATIVE_INFINITY,
  };
  /** Entries with a priority request waiting (in flight ones included: they wait for `done`). */
  readonly #priority = new Set<Entry>();
  /** Bumped by every change that can move a lane's next due time. */
  #version = 0;
  /**
   * Whether the kept next due times (`#nextDueKept`) still bound the lanes from below: true
   * after a pass, until a change that can bring work sooner (a finished scan, a request, a
   * lookup, a lighter scan, a reservation's end). A take only takes work and room away, so a
   * take after takes of the same turn still returns at once before the kept time (a turn's
   * regular takes used to cost the urgent lane's take a pass).
   */
  #keptHolds = false;
  /**
   * Each lane's next due time as of `#version` (see the module comment), and of `now` for
   * `skipLate`; infinity for none.
   */
  readonly #nextDueKept = {
    version: -1,
    now: Number.NaN,
    regular: Number.POSITIVE_INFINITY,
    urgent: Number.POSITIVE_INFINITY,
    skipLate: Number.POSITIVE_INFINITY,
    /** The lanes' times over waiting repositories whether they fit or not (`#keptHolds`). */
    regularAny: Number.POSITIVE_INFINITY,
    urgentAny: Number.POSITIVE_INFINITY,
  };

  constructor(opts: ScheduleOptions) {
    this.#hostOf = opts.hostOf;
    this.#perHost = Math.max(1, Math.floor(opts.perHostConcurrency));
    this.#latePerHost = Math.max(
      this.#perHost,
      Math.floor(opts.latePerHostConcurrency ?? 2 * this.#perHost),
    );
    this.#lateAfterMs = Math.max(0, opts.lateAfterMs ?? Number.POSITIVE_INFINITY);
    this.#onColdChange = opts.onColdChange;
    this.#onWeightChange = opts.onWeightChange;
    this.#hostCost = opts.hostCost;
    this.#maxWeight = Math.max(1, opts.maxWeightInFlight ?? Number.POSITIVE_INFINITY);
    this.#lightWeight = this.#maxWeight / 64;
  }

  /** Weight (tags) of the repositories taken and not yet done. */
  get weightInFlight(): number {
    return this.#weightInFlight;
  }

  /**
   * Sets the weight of `name`, in flight, to `weight` (its listing's size, once listed): a
   * repository's first scan comes in at 0, so that what it holds counts from then on.
   */
  weigh(name: string, weight: number): void {
    const entry = this.#entries.get(name);
    if (!entry?.inFlight) return;
    const before = entry.weight;
    this.#countInFlight(entry, -1);
    entry.weight = this.#counted(weight);
    this.#countInFlight(entry, 1);
    this.#onWeightChange?.(this.#weightInFlight);
    // A heavier scan starts nothing: drop what was kept, but wake the loop only for room.
    if (entry.weight < before) this.#notify();
    else this.#version++;
  }

  /** Number of repositories taken and not yet done (updated before any waiter wakes). */
  get inFlight(): number {
    let n = 0;
    for (const load of this.#hosts.values()) n += load.inFlight;
    return n;
  }

  /**
   * Number of those taken with `urgentOnly` or `priorityOnly` (the warmer's urgent lane) and
   * not yet done: the warmer keeps part of its regular lane whatever the urgent one holds,
   * so that a stream of late repositories does not starve the regular work (a cold fill's
   * never-scanned repositories go first there).
   */
  get urgentInFlight(): number {
    return this.#urgentInFlight;
  }

  /** Number of repositories scheduled (in flight included). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Makes the schedule hold exactly `names` (a lookup's answer): new repositories come in
   * as never scanned, missing ones leave (once their scan ends, when in flight); the due
   * times of the others are kept.
   */
  sync(names: Iterable<string>): void {
    const seen = new Set<string>();
    for (const name of names) {
      seen.add(name);
      const entry = this.#entries.get(name);
      if (entry) this.#watch(entry, true);
      else this.#add(name);
    }
    for (const [name, entry] of this.#entries) {
      if (seen.has(name)) continue;
      this.#watch(entry, false);
      if (!entry.inFlight) this.#forget(entry);
    }
    this.#notify();
  }

  /**
   * Asks for `name` to be scanned before any regular work (added when not scheduled yet).
   * With `onlyTags`, that scan checks only those tags (and new ones; an empty list: the
   * listing's new tags only), unless another request for the same scan asked for every tag;
   * requests waiting together add up. With `listing: false` (tags pushed), the named tags
   * need no listing: the scan skips it when no other request waiting together needs one. A
   * request for a repository in flight waits for that scan to end, then runs.
   */
  prioritize(
    name: string,
    onlyTags?: readonly string[],
    { listing = true }: { listing?: boolean | undefined } = {},
  ): void {
    const entry = this.#entries.get(name) ?? this.#add(name);
    this.#watch(entry, true);
    const waiting = entry.prioritySeq !== undefined;
    if (onlyTags === undefined) entry.priorityTags = undefined;
    else if (!waiting) entry.priorityTags = new Set(onlyTags);
    else if (entry.priorityTags) for (const tag of onlyTags) entry.priorityTags.add(tag);
    const needsListing = listing || onlyTags === undefined || onlyTags.length === 0;
    entry.priorityListing = waiting ? entry.priorityListing || needsListing : needsListing;
    if (!waiting) entry.prioritySeq = this.#seq++;
    this.#priority.add(entry);
    this.#notify();
  }

  /**
   * The repository to scan now, marked in flight: the oldest priority request, else, of
   * the due repositories whose host has room, the most overdue late one, else the most
   * overdue by weight; undefined when none. A late repository (or a due lease retry) has
   * room on its host up to `latePerHostConcurrency`. With `priorityOnly`, only a priority request; with
   * `urgentOnly`, only a priority request or a late repository (what the warmer starts when
   * every worker is busy); with `skipLate`, no late one (the warmer's regular lane beyond
   * its workers, kept for a cold fill and due work while late ones fill the urgent lane).
   */
  take(
    now: number,
    opts: { priorityOnly?: boolean; urgentOnly?: boolean; skipLate?: boolean } = {},
  ): ScheduledItem | undefined {
    const priority = this.#oldestPriority();
    if (priority === undefined && opts.priorityOnly) return undefined;
    // Nothing can be due before the lane's next due time, unless the schedule changed since
    // it was kept. When it did, the pass below answers: working the time out first would
    // be a second pass (after every take of a fill, the next take made two).
    if (priority === undefined && !opts.skipLate) {
      const kept = this.#nextDueKept;
      const at = opts.urgentOnly ? kept.urgent : kept.regular;
      if (kept.version === this.#version && now < at) return undefined;
      // After takes alone (work and room only taken away), nothing at all can start before
      // the time kept over every waiting repository, fitting or not (one that does not fit
      // could be reserved by a pass: that pass must still happen).
      const any = opts.urgentOnly ? kept.urgentAny : kept.regularAny;
      if (this.#keptHolds && now < any) return undefined;
    }
    const pass = this.#takePass;
    pass.best = undefined;
    pass.bestScore = Number.NEGATIVE_INFINITY;
    pass.unfit = undefined;
    pass.unfitScore = Number.NEGATIVE_INFINITY;
    if (priority === undefined) {
      for (const load of this.#hosts.values()) {
        const first = this.#firstScanWaiting(load);
        if (first !== undefined) this.#consider(first, now, opts, pass);
      }
      // A never-scanned one that may start outranks every scanned one but a due lease retry
      // (they alone rank as high), fitting or not: only those can change the outcome.
      const rest = pass.bestScore === Number.POSITIVE_INFINITY ? this.#retrying : this.#scanned;
      for (const entry of rest) this.#consider(entry, now, opts, pass);
    }
    const { best, bestScore, unfit, unfitScore } = pass;
    pass.best = undefined;
    pass.unfit = undefined;
    if (unfit && this.#ranksAbove(unfit, unfitScore, best, bestScore)) {
      // Held back by its weight while less urgent ones start: keep it room (at most one
      // more pass, since a reservation stands until its repository starts or leaves).
      this.#reserved = unfit;
      this.#version++;
      return this.take(now, opts);
    }
    const chosen = priority ?? best;
    if (!chosen) return undefined;
    if (this.#reserved === chosen) {
      // Heavy ones held back for it may fit now: the kept times no longer bound them.
      this.#reserved = undefined;
      this.#keptHolds = false;
    }
    this.#countInFlight(chosen, 1);
    if (chosen.weight > 0) this.#onWeightChange?.(this.#weightInFlight);
    chosen.inFlight = true;
    chosen.urgent = opts.urgentOnly === true || opts.priorityOnly === true;
    if (chosen.urgent) this.#urgentInFlight++;
    chosen.load.inFlight++;
    const item: ScheduledItem = {
      name: chosen.name,
      host: chosen.host,
      priority: !!priority,
      late: !priority && this.#isLate(chosen, now),
    };
    if (priority && chosen.priorityTags) {
      item.onlyTags = [...chosen.priorityTags];
      if (!chosen.priorityListing) item.skipListing = true;
    }
    chosen.prioritySeq = undefined;
    chosen.priorityTags = undefined;
    chosen.priorityListing = true;
    this.#priority.delete(chosen);
    this.#version++;
    return item;
  }

  /** Ranks `entry` in a take's pass (see `take`). */
  #consider(
    entry: Entry,
    now: number,
    opts: { urgentOnly?: boolean; skipLate?: boolean },
    pass: TakePass,
  ): void {
    if (entry.inFlight || entry.prioritySeq !== undefined) return;
    if (entry.dueAt > now) return;
    const late = this.#isLate(entry, now);
    if ((opts.urgentOnly && !late) || (opts.skipLate && late)) return;
    if (!this.#hostHasRoom(entry.load, late)) return;
    const score = this.#urgency(entry, now);
    if (this.#fits(entry)) {
      if (this.#ranksAbove(entry, score, pass.best, pass.bestScore)) {
        pass.best = entry;
        pass.bestScore = score;
      }
    } else if (!this.#reserved && this.#ranksAbove(entry, score, pass.unfit, pass.unfitScore)) {
      pass.unfit = entry;
      pass.unfitScore = score;
    }
  }

  /**
   * The first repository of `load`'s host never scanned and waiting (not in flight, no
   * priority request), dropping those scanned or forgotten from the head of its queue. It
   * stands for all of them in a pass: they rank as one but for order of arrival, and weigh
   * nothing yet (a repository weighs only once its scan lists it), so whether one fits
   * depends on its host alone.
   */
  #firstScanWaiting(load: HostLoad): Entry | undefined {
    const queue = load.firstScans;
    let i = load.firstScansHead;
    let found: Entry | undefined;
    for (; i < queue.length; i++) {
      const entry = queue[i] as Entry;
      const left = entry.gone || entry.dueAt !== Number.NEGATIVE_INFINITY;
      if (left && i === load.firstScansHead) {
        load.firstScansHead++;
        continue;
      }
      if (left || entry.inFlight || entry.prioritySeq !== undefined) continue;
      found = entry;
      break;
    }
    // Keep the queue's memory to what waits in it: drop the passed head once it is half.
    if (load.firstScansHead > 1024 && load.firstScansHead * 2 > queue.length) {
      queue.splice(0, load.firstScansHead);
      load.firstScansHead = 0;
    }
    return found;
  }

  /**
   * The earliest time a `take` (with `urgentOnly`, such a take) could find work without
   * anything else happening (a request, a finished scan, a lookup): the earliest due time
   * of a waiting repository whose host has room, or the time one on a full host (under
   * `latePerHostConcurrency`) becomes late. Undefined when only such events can bring work.
   * With `skipLate` (and `now`), for a take with `skipLate` at `now` or later: a repository
   * late by then never counts.
   */
  nextDue(
    opts: { urgentOnly?: boolean; skipLate?: boolean; now?: number } = {},
  ): number | undefined {
    if (this.#oldestPriority() !== undefined) return Number.NEGATIVE_INFINITY;
    const now = opts.now ?? Number.NEGATIVE_INFINITY;
    // The lanes without skipLate hold until the schedule changes (not as the clock moves).
    const kept = this.#nextDueKept;
    const fresh = kept.version === this.#version && (!opts.skipLate || kept.now === now);
    if (!fresh) this.#nextDuePass(now);
    const at = opts.skipLate ? kept.skipLate : opts.urgentOnly ? kept.urgent : kept.regular;
    return at === Number.POSITIVE_INFINITY ? undefined : at;
  }

  /**
   * Every lane's next due time in one pass, kept as of this version (and `now`, for
   * `skipLate`): the warmer asks two or three lanes a turn, a pass each before. Plain numbers
   * with infinity for none: with `number | undefined` V8 boxed a number or more per
   * repository per pass (a heap sampling profile of bench:scale at 2,000,000 tags).
   */
  #nextDuePass(now: number): void {
    let regular = Number.POSITIVE_INFINITY;
    let urgent = Number.POSITIVE_INFINITY;
    let skipLate = Number.POSITIVE_INFINITY;
    let regularAny = Number.POSITIVE_INFINITY;
    let urgentAny = Number.POSITIVE_INFINITY;
    const visit = (entry: Entry) => {
      if (entry.inFlight || entry.prioritySeq !== undefined) return;
      const dueAt = entry.dueAt;
      const lateAt = this.#lateAt(entry);
      const room = this.#hostHasRoom(entry.load, false);
      const lateRoom = this.#hostHasRoom(entry.load, true);
      const at = room ? dueAt : lateRoom ? lateAt : Number.POSITIVE_INFINITY;
      if (at < regularAny) regularAny = at;
      if (lateRoom && lateAt < urgentAny) urgentAny = lateAt;
      // Weights change only with takes, dones and weighs, which all drop the kept answer.
      if (!this.#fits(entry)) return;
      if (at < regular) regular = at;
      if (lateRoom && lateAt < urgent) urgent = lateAt;
      if (room && lateAt > now && dueAt < skipLate) skipLate = dueAt;
    };
    // A host's first repository never scanned stands for the others (see the module comment).
    for (const load of this.#hosts.values()) {
      const first = this.#firstScanWaiting(load);
      if (first !== undefined) visit(first);
    }
    for (const entry of this.#scanned) visit(entry);
    const kept = this.#nextDueKept;
    kept.version = this.#version;
    kept.now = now;
    kept.regular = regular;
    kept.urgent = urgent;
    kept.skipLate = skipLate;
    kept.regularAny = regularAny;
    kept.urgentAny = urgentAny;
    this.#keptHolds = true;
  }

  /** Marks a repository taken with `take` as finished, due again as `next` says. */
  done(name: string, next: NextScan): void {
    const entry = this.#entries.get(name);
    if (!entry?.inFlight) return;
    entry.inFlight = false;
    if (entry.urgent) this.#urgentInFlight--;
    entry.urgent = false;
    this.#countInFlight(entry, -1);
    if (entry.weight > 0) this.#onWeightChange?.(this.#weightInFlight);
    if (next.weight !== undefined) entry.weight = this.#counted(next.weight);
    entry.load.inFlight = Math.max(0, entry.load.inFlight - 1);
    if (!entry.watched) {
      this.#forget(entry);
    } else {
      const cold = entry.cold && next.unscanned === true;
      if (next.ran) this.#costScan(entry);
      if (cold !== entry.cold) this.#countCold(entry, cold ? 1 : -1);
      entry.cold = cold;
      // Minus infinity marks a repository never scanned (see `#firstScanWaiting`).
      entry.dueAt = Math.max(next.dueAt, -Number.MAX_VALUE);
      this.#scanned.add(entry);
      entry.likelihood = Math.min(1, Math.max(Number.MIN_VALUE, next.likelihood));
      entry.retryLease = next.retryLease === true;
      if (entry.retryLease) this.#retrying.add(entry);
      else this.#retrying.delete(entry);
    }
    this.#notify();
  }

  /**
   * Whether `host` still has repositories never scanned (waiting or in flight here, or
   * another warmer's first scan of them under way, `NextScan.unscanned`): the host's cold
   * fill is not over. Replicas sharing a store take their repositories in the same order,
   * so each soon finds most of a host's held by the others; counted as scanned then, every
   * replica thought the host's fill over while a third of it was still to come, and its
   * rescans polled every tag (a `HEAD` each) with the budget the fill needed (bench:scale, 3
   * replicas: 120 more `HEAD`s on the Docker Hub-like registry than one replica's fill).
   */
  hasColdWork(host: string): boolean {
    return (this.#hosts.get(host)?.cold ?? 0) > 0;
  }

  /** Marks `entry` watched or not, keeping the count of cold ones. */
  #watch(entry: Entry, watched: boolean): void {
    if (entry.watched === watched) return;
    entry.watched = watched;
    if (entry.cold) this.#countCold(entry, watched ? 1 : -1);
  }

  #countCold({ host, load }: Entry, delta: number): void {
    const before = load.cold;
    const n = Math.max(0, before + delta);
    load.cold = n;
    if (before > 0 !== n > 0) this.#onColdChange?.(host, n > 0);
  }

  /** When `name` falls due (minus infinity: never scanned); undefined when not scheduled. */
  dueAt(name: string): number | undefined {
    return this.#entries.get(name)?.dueAt;
  }

  /**
   * Resolves when something may have changed (a sync, a request, a finished scan), after
   * `timeoutMs`, or on abort, whichever comes first.
   */
  changed(signal: AbortSignal, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", finish);
        this.#waiters.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, Math.max(0, timeoutMs));
      signal.addEventListener("abort", finish, { once: true });
      this.#waiters.add(finish);
    });
  }

  #add(name: string): Entry {
    const host = this.#hostOf(name);
    let load = this.#hosts.get(host);
    if (!load) {
      load = {
        inFlight: 0,
        cold: 0,
        scans: 0,
        spent: 0,
        spentOn: 0,
        firstScans: [],
        firstScansHead: 0,
      };
      this.#hosts.set(host, load);
    }
    const entry: Entry = {
      name,
      host,
      load,
      dueAt: Number.NEGATIVE_INFINITY,
      likelihood: 1,
      retryLease: false,
      cold: true,
      seq: this.#seq++,
      inFlight: false,
      urgent: false,
      watched: true,
      gone: false,
      weight: 0,
      prioritySeq: undefined,
      priorityTags: undefined,
      priorityListing: true,
    };
    this.#entries.set(name, entry);
    load.firstScans.push(entry);
    this.#countCold(entry, 1);
    this.#version++;
    this.#keptHolds = false;
    return entry;
  }

  /**
   * How much scanning `entry` now is worth: never scanned and lease retries first (in order
   * of arrival), then late ones by time overdue (above any weighted score: `LATE_RANK` plus
   * it), then time overdue weighted by its change likelihood (at most the time overdue, so
   * always under `LATE_RANK`).
   */
  #urgency(entry: Entry, now: number): number {
    if (entry.dueAt === Number.NEGATIVE_INFINITY || entry.retryLease) {
      return Number.POSITIVE_INFINITY;
    }
    const overdue = now - entry.dueAt;
    if (overdue >= this.#lateAfterMs) return LATE_RANK + overdue;
    return overdue * entry.likelihood;
  }

  /** Whether `entry`, of urgency `score`, goes before `best` (none yet: it does). */
  #ranksAbove(entry: Entry, score: number, best: Entry | undefined, bestScore: number): boolean {
    if (best === undefined || score > bestScore) return true;
    return score === bestScore && this.#spreadsBetter(entry, best);
  }

  /**
   * Whether `entry` may start now by weight (see the module comment): it fits in the room
   * the bound leaves, or nothing heavy is in flight (it starts alone), or it is light and
   * its host has nothing in flight; a heavy one besides leaves the reserved repository its
   * room.
   */
  #fits(entry: Entry): boolean {
    const room = this.#maxWeight - this.#weightInFlight;
    const reserved = this.#reserved;
    if (reserved !== undefined && reserved !== entry && entry.weight > this.#lightWeight) {
      return entry.weight + reserved.weight <= room;
    }
    if (entry.weight <= room || this.#heavyInFlight === 0) return true;
    // Over the bound, a light one still starts on a host with nothing in flight here, or
    // that host's budget idles for as long as other hosts' large scans hold the room.
    return entry.weight <= this.#lightWeight && entry.load.inFlight === 0;
  }

  /**
   * A repository's tags as they count against the bound: at most three quarters of it, so
   * that small ones go on beside one larger than the bound (held back, every other host's
   * work would wait for its scan).
   */
  #counted(weight: number): number {
    return Math.min(Math.max(0, weight), (this.#maxWeight * 3) / 4);
  }

  /** Adds (1) or takes away (-1) `entry`'s weight in what is in flight. */
  #countInFlight(entry: Entry, sign: 1 | -1): void {
    if (entry.weight > this.#lightWeight) this.#heavyInFlight += sign;
    this.#weightInFlight += sign * entry.weight;
  }

  /**
   * Between two as urgent (a cold fill: every repository never scanned), the one whose host
   * has none in flight (its budget idle), then fewer in flight for the fill it has left,
   * then fewer in flight, then the earlier arrival. A lookup lists its repositories host by
   * host, and taking them in that order filled every slot with two hosts' repositories while
   * the other hosts' budgets went unspent (bench:scale, 10 registries: 5x the budget-bound
   * fill). Spread evenly instead, a host whose scans cost more (Docker Hub's: a `HEAD`
   * before each pull, three requests a tag where others need two) got the same slots as the
   * others and its budget went a quarter to a half unspent while the replicas were short of
   * CPU, the fill's slowest part (bench:scale at 10,000 repositories / 200,000 tags: its
   * fill at 1.42x its budget-bound time, the others done in two thirds of it). So each
   * host's slots follow the time its fill has left: its cold repositories times the seconds
   * of its budget a scan of it took here on average (requests per scan over its rate, drawn
   * towards the hosts' mean), and the hosts' fills end together rather than one after the
   * others. Not a scan's own duration: that includes its waits for the budget, which grow
   * with its host's slots, and a host given more slots looked ever slower (a 1-replica fill
   * took 1.59x its minimum instead of 1.1x).
   */
  #spreadsBetter(entry: Entry, best: Entry): boolean {
    const a = entry.load;
    const b = best.load;
    if (a !== b) {
      // A host without a scan in flight first: its budget is idle.
      if ((a.inFlight === 0) !== (b.inFlight === 0)) return a.inFlight === 0;
      // (in flight + 1) / fill left, lower first; compared multiplied out.
      const aLeft = this.#fillLeft(a);
      const bLeft = this.#fillLeft(b);
      const ahead = (a.inFlight + 1) * bLeft - (b.inFlight + 1) * aLeft;
      if (ahead !== 0) return ahead < 0;
      if (a.inFlight !== b.inFlight) return a.inFlight < b.inFlight;
    }
    return entry.seq < best.seq;
  }

  /** A host's cold fill left, in seconds of its budget (see `#spreadsBetter`). */
  #fillLeft(load: HostLoad): number {
    // Its own cost per scan, drawn towards the hosts' mean by `PRIOR_SCANS` scans at the
    // mean: a fill's repositories differ a thousandfold in size, and a host whose first one
    // was small looked cheap and got no slot for seconds (a 1-replica default fill).
    const mean = this.#meanScanCost;
    const each = (load.spent + PRIOR_SCANS * mean) / (load.spentOn + PRIOR_SCANS);
    // A host with nothing cold (lease retries tie with cold ones) still ranks by its cost.
    return Math.max(1, load.cold) * each;
  }

  /** Counts a scan of `entry` that ran, and its host's cost per scan as of now. */
  #costScan(entry: Entry): void {
    const load = entry.load;
    load.scans++;
    const cost = this.#hostCost?.(entry.name);
    const rate = cost?.rateRps;
    if (cost === undefined || rate === undefined || !(rate > 0) || !(cost.requests > 0)) return;
    // The requests counted so far include those of its scans still in flight, on average
    // half done: counted over the finished ones alone, a host with several in flight and
    // few done looked costly, was given more slots, and looked costlier still.
    load.spent = cost.requests / rate;
    load.spentOn = load.scans + load.inFlight / 2;
    let spent = 0;
    let on = 0;
    for (const other of this.#hosts.values()) {
      spent += other.spent;
      on += other.spentOn;
    }
    this.#meanScanCost = on > 0 ? spent / on : 1;
  }

  /**
   * When `entry` is late (see the module comment): a lease retry as soon as it is due (a
   * look costs store round trips; a dead holder's repository is taken over then), any other
   * scanned one `lateAfterMs` past its due time; never one never scanned (a cold fill is
   * what the cap spreads over the hosts).
   */
  #lateAt(entry: Entry): number {
    if (entry.dueAt === Number.NEGATIVE_INFINITY) return Number.POSITIVE_INFINITY;
    return entry.retryLease ? entry.dueAt : entry.dueAt + this.#lateAfterMs;
  }

  #isLate(entry: Entry, now: number): boolean {
    return now >= this.#lateAt(entry);
  }

  /** Whether a host of `load` has room for one more scan (a late one: up to `latePerHostConcurrency`). */
  #hostHasRoom(load: HostLoad, late: boolean): boolean {
    return load.inFlight < (late ? this.#latePerHost : this.#perHost);
  }

  #notify(): void {
    this.#version++;
    this.#keptHolds = false;
    for (const wake of [...this.#waiters]) wake();
  }

  /** The waiting priority request asked first, of repositories not in flight. */
  #oldestPriority(): Entry | undefined {
    let oldest: Entry | undefined;
    for (const entry of this.#priority) {
      if (entry.inFlight) continue;
      if (oldest === undefined || (entry.prioritySeq ?? 0) < (oldest.prioritySeq ?? 0)) {
        oldest = entry;
      }
    }
    return oldest;
  }

  /** Drops `entry` from the schedule. */
  #forget(entry: Entry): void {
    if (this.#reserved === entry) this.#reserved = undefined;
    this.#entries.delete(entry.name);
    this.#scanned.delete(entry);
    this.#retrying.delete(entry);
    entry.gone = true;
    this.#priority.delete(entry);
    this.#version++;
  }
}

/** A take's pass so far: the best waiting repository that fits, and the best that does not. */
interface TakePass {
  best: Entry | undefined;
  bestScore: number;
  unfit: Entry | undefined;
  unfitScore: number;
}

/** Scans at the hosts' mean cost that a host's own cost per scan is drawn towards. */
const PRIOR_SCANS = 8;

/**
 * Added to a late repository's time overdue so that it ranks above every weighted score,
 * which is at most a time overdue (likelihood at most 1) and so less than this (about 31
 * years of milliseconds; finite, so that the sum still orders by time overdue).
 */
const LATE_RANK = 1e12;
