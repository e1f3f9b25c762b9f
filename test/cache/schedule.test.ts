/**
 * The warmer's schedule (issue 13) on a fake clock: repositories come due by their own due
 * time, priority requests first, then the most overdue weighted by how likely each is to
 * have changed, never-scanned ones first, and ones late against their bound ahead of the
 * merely due; a host at its cap waits while other hosts work.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Schedule } from "../../src/cache/schedule.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1);

function schedule(
  perHostConcurrency = 8,
  lateAfterMs?: number,
  maxWeightInFlight?: number,
): Schedule {
  // "host/repository" names: the host is the part before the first slash.
  return new Schedule({
    hostOf: (name) => name.split("/")[0] ?? "",
    perHostConcurrency,
    lateAfterMs,
    maxWeightInFlight,
  });
}

/** Takes everything `s` gives at `now`, names only. */
function takeAll(s: Schedule, now: number): string[] {
  const names: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const item = s.take(now);
    if (!item) return names;
    names.push(item.name);
  }
  throw new Error("the schedule kept giving work");
}

describe("Schedule", () => {
  it("gives never-scanned repositories at once, in lookup order, then each at its due time", () => {
    const s = schedule();
    s.sync(["a/1", "b/1", "a/2"]);
    assert.deepEqual(takeAll(s, T0), ["a/1", "b/1", "a/2"]);
    s.done("a/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    s.done("b/1", { dueAt: T0 + 3 * MINUTE, likelihood: 1 });
    s.done("a/2", { dueAt: T0 + 2 * MINUTE, likelihood: 1 });
    assert.equal(s.nextDue(), T0 + MINUTE);
    assert.deepEqual(takeAll(s, T0 + MINUTE - 1), [], "nothing is due before its time");
    assert.deepEqual(takeAll(s, T0 + MINUTE), ["a/1"]);
    assert.equal(s.nextDue(), T0 + 2 * MINUTE, "one in flight is not waited for");
    // Late: both others are due; the most overdue first.
    assert.deepEqual(takeAll(s, T0 + 4 * MINUTE), ["a/2", "b/1"]);
    assert.equal(s.nextDue(), undefined);
    assert.equal(s.inFlight, 3);
  });

  it("keeps a host's never-scanned repositories in arrival order around priority takes, drops and returns", () => {
    // A pass looks only at each host's first one waiting: those taken out of turn, dropped
    // or scanned must not hold the others up, and one dropped and looked up again comes last.
    const s = schedule(1);
    s.sync(["a/1", "a/2", "a/3", "a/4", "b/1"]);
    s.prioritize("a/2");
    assert.equal(s.take(T0)?.name, "a/2");
    s.done("a/2", { dueAt: T0 + MINUTE, likelihood: 1 });
    s.sync(["a/2", "a/3", "a/4", "b/1"]);
    s.sync(["a/1", "a/2", "a/3", "a/4", "b/1"]);
    const order: string[] = [];
    for (let i = 0; i < 10; i++) {
      const item = s.take(T0);
      if (!item) break;
      order.push(item.name);
      s.done(item.name, { dueAt: T0 + MINUTE, likelihood: 1 });
    }
    assert.deepEqual([...order].sort(), ["a/1", "a/3", "a/4", "b/1"]);
    assert.deepEqual(
      order.filter((name) => name.startsWith("a/")),
      ["a/3", "a/4", "a/1"],
    );
    assert.equal(s.nextDue(), T0 + MINUTE, "every one scanned, due again together");
  });

  it("says whether a host's cold fill goes on (never-scanned repositories waiting or in flight)", () => {
    const s = schedule(1);
    s.sync(["a/1", "a/2", "b/1"]);
    assert.equal(s.hasColdWork("a"), true);
    assert.deepEqual(takeAll(s, T0), ["a/1", "b/1"], "one of each host (cap 1)");
    s.done("b/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.hasColdWork("b"), false, "b's only repository is scanned");
    s.done("a/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.hasColdWork("a"), true, "a/2 never scanned");
    assert.deepEqual(takeAll(s, T0), ["a/2"]);
    assert.equal(s.hasColdWork("a"), true, "a/2 in flight");
    s.done("a/2", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.hasColdWork("a"), false);
    assert.equal(s.hasColdWork("c"), false, "an unknown host");
  });

  it("tells when a host's cold work starts and ends, once each", () => {
    const changes: string[] = [];
    const s = new Schedule({
      hostOf: (name) => name.split("/")[0] ?? "",
      perHostConcurrency: 8,
      onColdChange: (host, cold) => changes.push(`${host} ${cold}`),
    });
    s.sync(["a/1", "a/2", "b/1"]);
    assert.deepEqual(changes, ["a true", "b true"]);
    takeAll(s, T0);
    s.done("a/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    s.done("b/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    s.done("a/2", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.deepEqual(changes, ["a true", "b true", "b false", "a false"]);
    s.sync(["a/1", "a/2", "b/1", "b/2"]);
    assert.deepEqual(changes.slice(4), ["b true"], "a new repository of b is cold work");
  });

  it("a repository whose first scan another warmer holds stays cold work until one ends", () => {
    const s = schedule(1);
    s.sync(["a/1", "a/2"]);
    assert.deepEqual(takeAll(s, T0), ["a/1"]);
    // Another warmer holds a/1's lease and the store has no record of it yet.
    s.done("a/1", { dueAt: T0 + 2000, likelihood: 1, retryLease: true, unscanned: true });
    assert.deepEqual(takeAll(s, T0), ["a/2"]);
    s.done("a/2", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.hasColdWork("a"), true, "a/1's first scan goes on elsewhere");
    assert.equal(s.dueAt("a/1"), T0 + 2000, "looked at again when the retry is due");
    assert.deepEqual(takeAll(s, T0 + 2000), ["a/1"]);
    s.done("a/1", { dueAt: T0 + 4000, likelihood: 1, retryLease: true, unscanned: true });
    assert.equal(s.hasColdWork("a"), true, "still held, still no record");
    s.sync(["a/2"]);
    assert.equal(s.hasColdWork("a"), false, "dropped from the lookup");
    s.sync(["a/1", "a/2"]);
    assert.equal(s.hasColdWork("a"), true, "watched again, still cold");
    takeAll(s, T0 + 4000);
    // The holder finished: the look finds its record (fresh, skipped; or held again by a
    // later scan of it, with a record).
    s.done("a/1", { dueAt: T0 + MINUTE, likelihood: 1, retryLease: true });
    assert.equal(s.hasColdWork("a"), false);
    // Once scanned, a later look that says unscanned does not make it cold again.
    takeAll(s, T0 + MINUTE);
    s.done("a/1", { dueAt: T0 + 2 * MINUTE, likelihood: 1, retryLease: true, unscanned: true });
    assert.equal(s.hasColdWork("a"), false);
  });

  it("a never-scanned repository dropped from the lookup is no cold work; back, it is again", () => {
    const s = schedule(1);
    s.sync(["a/1", "a/2"]);
    assert.deepEqual(takeAll(s, T0), ["a/1"]);
    s.sync(["b/1"]);
    assert.equal(s.hasColdWork("a"), false, "a/1 in flight but dropped, a/2 gone");
    assert.equal(s.hasColdWork("b"), true);
    s.sync(["a/1", "b/1"]);
    assert.equal(s.hasColdWork("a"), true, "a/1 watched again, still never scanned");
    s.done("a/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.hasColdWork("a"), false);
    s.prioritize("a/3");
    assert.equal(s.hasColdWork("a"), true, "a repository a priority request added");
  });

  it("weights the time overdue by how likely the repository is to have changed", () => {
    const s = schedule();
    s.sync(["h/quiet", "h/busy"]);
    takeAll(s, T0);
    // The quiet one is twice as overdue, but eight times less likely to have changed.
    s.done("h/quiet", { dueAt: T0, likelihood: 1 / 8 });
    s.done("h/busy", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.deepEqual(takeAll(s, T0 + 2 * MINUTE), ["h/busy", "h/quiet"]);
    s.done("h/quiet", { dueAt: T0, likelihood: 1 / 8 });
    s.done("h/busy", { dueAt: T0 + 9.5 * MINUTE, likelihood: 1 });
    // Ten minutes late against half a minute: the quiet one's turn.
    assert.deepEqual(takeAll(s, T0 + 10 * MINUTE), ["h/quiet", "h/busy"]);
  });

  it("puts a repository late against its bound ahead of every merely due one", () => {
    // The warmer's slack: a lease TTL of 10 s, late after a quarter of it.
    const s = schedule(8, 2500);
    s.sync(["h/quiet", "h/busy1", "h/busy2"]);
    takeAll(s, T0);
    // Backed off to eight times its interval: weight 1/8. The busy ones fall due as it
    // waits, one after the other, and one is taken at a time, as when a saturated budget
    // keeps the workers busy; weights alone would put them first until it was 8 times as
    // late as they are.
    s.done("h/quiet", { dueAt: T0, likelihood: 1 / 8 });
    s.done("h/busy1", { dueAt: T0 + 1000, likelihood: 1 });
    s.done("h/busy2", { dueAt: T0 + 2000, likelihood: 1 });
    assert.equal(s.take(T0 + 2000)?.name, "h/busy1", "not late yet: by weight (1 s vs 2/8 s)");
    s.done("h/busy1", { dueAt: T0 + 3000, likelihood: 1 });
    assert.equal(s.take(T0 + 2500)?.name, "h/quiet", "2.5 s late: ahead of a busy one");
    s.done("h/quiet", { dueAt: T0 + 80_000, likelihood: 1 / 8 });
    // Among late ones, the most overdue first, whatever their weights.
    const late = schedule(8, 2500);
    late.sync(["h/a", "h/b", "h/c"]);
    takeAll(late, T0);
    late.done("h/a", { dueAt: T0 + 1000, likelihood: 1 });
    late.done("h/b", { dueAt: T0, likelihood: 1 / 8 });
    late.done("h/c", { dueAt: T0 + 4000, likelihood: 1 });
    assert.deepEqual(takeAll(late, T0 + 5000), ["h/b", "h/a", "h/c"]);
  });

  it("starts a repository late against its bound on a host at its cap, up to twice the cap", () => {
    // test:scale: four slots of a host held by a huge repository's polling scan and small
    // ones taking seconds each at a saturated budget; repositories falling due together
    // queued behind them 7-9 s, past a lease TTL of 5 s (their bound's slack).
    const s = schedule(2, 2500);
    s.sync(["h/big", "h/a", "h/b", "h/c", "h/d", "o/1"]);
    assert.deepEqual(takeAll(s, T0), ["h/big", "o/1", "h/a"], "the cold fill: at the cap");
    s.done("o/1", { dueAt: T0 + 12_000, likelihood: 1 });
    for (const name of ["h/a", "h/b", "h/c"]) {
      s.done(name, { dueAt: T0 + 10_000, likelihood: 1 });
      assert.equal(s.take(T0)?.name, name === "h/a" ? "h/b" : name === "h/b" ? "h/c" : "h/d");
    }
    s.done("h/d", { dueAt: T0 + 10_000, likelihood: 1 });
    // h/big's scan goes on throughout, holding one of h's two slots.
    assert.equal(s.take(T0 + 10_000)?.name, "h/a", "due, and the host has room");
    assert.equal(s.take(T0 + 10_000), undefined, "merely due on a full host: waits");
    assert.equal(s.nextDue(), T0 + 12_000, "o/1 is due first");
    assert.equal(s.take(T0 + 12_000)?.name, "o/1");
    assert.equal(s.nextDue(), T0 + 12_500, "then h's due ones turn late");
    assert.equal(s.take(T0 + 12_499), undefined);
    assert.deepEqual(takeAll(s, T0 + 12_500), ["h/b", "h/c"], "late: up to twice the cap");
    assert.equal(s.nextDue(), undefined, "h/d is late but h is at twice its cap");
    s.done("h/a", { dueAt: T0 + 20_000, likelihood: 1 });
    assert.equal(s.take(T0 + 12_500, { urgentOnly: true })?.name, "h/d");
    assert.equal(s.inFlight, 5);
  });

  it("with urgentOnly, gives priority requests and late repositories, not the merely due", () => {
    const s = schedule(8, 2500);
    s.sync(["h/due", "h/late", "h/held"]);
    takeAll(s, T0);
    s.done("h/due", { dueAt: T0 + 1000, likelihood: 1 });
    s.done("h/late", { dueAt: T0, likelihood: 1 / 8 });
    s.done("h/held", { dueAt: T0 + 2000, likelihood: 1, retryLease: true });
    assert.equal(s.nextDue({ urgentOnly: true }), T0 + 2000, "the lease retry, once due");
    assert.equal(s.take(T0 + 1500, { urgentOnly: true }), undefined, "none late yet");
    assert.equal(s.take(T0 + 2000, { urgentOnly: true })?.name, "h/held");
    assert.equal(s.nextDue({ urgentOnly: true }), T0 + 2500);
    assert.deepEqual(s.take(T0 + 2500, { urgentOnly: true }), {
      name: "h/late",
      host: "h",
      priority: false,
      late: true,
    });
    assert.equal(s.take(T0 + 2500, { urgentOnly: true }), undefined, "h/due is 1.5 s overdue");
    s.prioritize("h/new");
    assert.equal(s.take(T0 + 2500, { urgentOnly: true })?.name, "h/new");
    assert.deepEqual(s.take(T0 + 2500), { name: "h/due", host: "h", priority: false, late: false });
    // The warmer bounds its lanes apart: three taken urgent, one regular.
    assert.equal(s.inFlight, 4);
    assert.equal(s.urgentInFlight, 3);
    s.done("h/late", { dueAt: T0 + MINUTE, likelihood: 1 });
    s.done("h/due", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.urgentInFlight, 2, "h/late left the urgent lane, h/due the regular one");
    assert.equal(s.inFlight, 2);
  });

  it("with skipLate, gives what is due or never scanned, never a late repository", () => {
    const s = schedule(8, 2500);
    s.sync(["h/late", "h/due", "h/held"]);
    takeAll(s, T0);
    s.done("h/late", { dueAt: T0, likelihood: 1 });
    s.done("h/due", { dueAt: T0 + 2000, likelihood: 1 });
    s.done("h/held", { dueAt: T0 + 1000, likelihood: 1, retryLease: true });
    s.sync(["h/late", "h/due", "h/held", "h/new"]);
    assert.equal(s.nextDue({ skipLate: true, now: T0 }), Number.NEGATIVE_INFINITY, "h/new");
    assert.equal(s.take(T0 + 3000, { skipLate: true })?.name, "h/new");
    // h/late is late from T0 + 2500, and a lease retry as soon as it is due.
    assert.equal(s.nextDue({ skipLate: true, now: T0 + 1000 }), T0);
    assert.equal(s.nextDue({ skipLate: true, now: T0 + 3000 }), T0 + 2000);
    assert.deepEqual(s.take(T0 + 3000, { skipLate: true }), {
      name: "h/due",
      host: "h",
      priority: false,
      late: false,
    });
    assert.equal(s.take(T0 + 3000, { skipLate: true }), undefined, "only late ones are left");
    assert.equal(s.nextDue({ skipLate: true, now: T0 + 3000 }), undefined);
    assert.deepEqual(takeAll(s, T0 + 3000), ["h/held", "h/late"], "both late: a regular take");
  });

  it("looks again at a repository another warmer's lease held ahead of the fill's backlog", () => {
    const s = schedule(8, 2500);
    s.sync(["h/held", "h/late"]);
    takeAll(s, T0);
    s.done("h/held", { dueAt: T0 + 1000, likelihood: 1, retryLease: true });
    s.done("h/late", { dueAt: T0 + 600, likelihood: 1 });
    s.sync(["h/held", "h/late", "h/new1", "h/new2"]);
    assert.deepEqual(takeAll(s, T0 + 500), ["h/new1", "h/new2"], "neither is due yet");
    s.done("h/new1", { dueAt: T0 + MINUTE, likelihood: 1 });
    s.done("h/new2", { dueAt: T0 + MINUTE, likelihood: 1 });
    s.sync(["h/held", "h/late", "h/new1", "h/new2", "h/new3"]);
    // Due: ahead of a late one and of a never-scanned one that came after it.
    assert.deepEqual(takeAll(s, T0 + 5000), ["h/held", "h/new3", "h/late"]);
    // Its next look found the holder's scan done: an ordinary due time again.
    s.done("h/held", { dueAt: T0 + 6000, likelihood: 1 });
    s.done("h/late", { dueAt: T0 + 6000 - 1, likelihood: 1 });
    assert.deepEqual(takeAll(s, T0 + 6000), ["h/late", "h/held"]);
  });

  it("ranks by weight alone without a slack (lateAfterMs unset)", () => {
    const s = schedule(8);
    s.sync(["h/quiet", "h/busy"]);
    takeAll(s, T0);
    s.done("h/quiet", { dueAt: T0, likelihood: 1 / 8 });
    s.done("h/busy", { dueAt: T0 + 50 * MINUTE, likelihood: 1 });
    assert.deepEqual(takeAll(s, T0 + 60 * MINUTE), ["h/busy", "h/quiet"]);
  });

  it("serves priority requests first, due or not, adding up the tags they name", () => {
    const s = schedule();
    s.sync(["h/a", "h/b", "h/c"]);
    takeAll(s, T0);
    for (const name of ["h/a", "h/b", "h/c"]) s.done(name, { dueAt: T0 + MINUTE, likelihood: 1 });
    s.prioritize("h/c", ["v1"]);
    s.prioritize("h/c", ["v2"]);
    s.prioritize("h/b");
    assert.equal(s.nextDue(), Number.NEGATIVE_INFINITY);
    assert.deepEqual(s.take(T0), {
      name: "h/c",
      host: "h",
      priority: true,
      late: false,
      onlyTags: ["v1", "v2"],
    });
    assert.deepEqual(s.take(T0), { name: "h/b", host: "h", priority: true, late: false });
    assert.equal(s.take(T0), undefined, "h/a is not due yet");
    // A request for a repository in flight runs once that scan ends.
    s.prioritize("h/b", ["v3"]);
    assert.equal(s.take(T0), undefined);
    s.done("h/b", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.deepEqual(s.take(T0), {
      name: "h/b",
      host: "h",
      priority: true,
      late: false,
      onlyTags: ["v3"],
    });
    // One request for every tag wins over one that named tags.
    s.prioritize("h/a", ["v1"]);
    s.prioritize("h/a");
    assert.deepEqual(s.take(T0), { name: "h/a", host: "h", priority: true, late: false });
  });

  it("spreads a cold fill over the hosts: of as urgent repositories, the host with fewest in flight for its cold ones", () => {
    const s = schedule(4);
    // A lookup lists repositories host by host.
    s.sync(["a/1", "a/2", "a/3", "b/1", "b/2", "c/1"]);
    // A host with none in flight first, then in flight + 1 over cold: a 2/3 before b 2/2
    // and c 2/1; then a 3/3 and b 2/2 tie, and b has fewer in flight.
    assert.deepEqual(takeAll(s, T0), ["a/1", "b/1", "c/1", "a/2", "b/2", "a/3"]);
    // As many cold each: one per host before a second of any.
    const even = schedule(4);
    even.sync(["a/1", "a/2", "b/1", "b/2", "c/1", "c/2"]);
    assert.deepEqual(takeAll(even, T0), ["a/1", "b/1", "c/1", "a/2", "b/2", "c/2"]);
  });

  it("gives a host whose scans cost more of its budget more of a cold fill's slots", () => {
    // bench:scale at 200,000 tags: the Docker Hub-like registry (three requests a tag where
    // the others need two) got as many slots as the others, its budget a quarter to a half
    // unspent, and its fill ended last at 1.42x the budget-bound time.
    const requests = new Map<string, number>([
      ["slow", 0],
      ["fast", 0],
    ]);
    const rates = new Map([
      ["slow", 10],
      ["fast", 20],
    ]);
    const s = new Schedule({
      hostOf: (name) => name.split("/")[0] ?? "",
      perHostConcurrency: 8,
      hostCost: (name) => {
        const host = name.split("/")[0] ?? "";
        return { requests: requests.get(host) ?? 0, rateRps: rates.get(host) };
      },
    });
    const slow = Array.from({ length: 40 }, (_, i) => `slow/${i}`);
    const fast = Array.from({ length: 40 }, (_, i) => `fast/${i}`);
    s.sync([...slow, ...fast]);
    // Sixteen scans of each, one of each at a time: slow's take 30 requests at 10/s (3 s of
    // its budget), fast's 20 at 20/s (1 s).
    for (let round = 0; round < 16; round++) {
      const pair = [s.take(T0)?.name ?? "", s.take(T0)?.name ?? ""];
      assert.deepEqual(pair.map((n) => n.split("/")[0]).sort(), ["fast", "slow"]);
      requests.set("slow", (requests.get("slow") ?? 0) + 30);
      requests.set("fast", (requests.get("fast") ?? 0) + 20);
      for (const name of pair) s.done(name, { dueAt: T0 + MINUTE, likelihood: 1, ran: true });
    }
    // 24 cold each left; drawn towards the mean (2 s) by 8 scans, slow's cost is 2.67 s and
    // fast's 1.33 s: 64 s and 32 s of fill left, and slots in that proportion.
    const next = Array.from({ length: 8 }, () => s.take(T0)?.name ?? "");
    const slowTaken = next.filter((n) => n.startsWith("slow/")).length;
    assert.equal(slowTaken, 5, `slow took ${slowTaken} of 8: ${next.join(" ")}`);
    // A scan skipped for its lease is no cost; a host with none in flight goes first.
    for (const name of next.filter((n) => n.startsWith("fast/"))) {
      s.done(name, { dueAt: T0 + MINUTE, likelihood: 1 });
    }
    assert.equal(s.take(T0)?.name.split("/")[0], "fast", "fast has none in flight");
  });

  it("with priorityOnly, gives only priority requests", () => {
    const s = schedule();
    s.sync(["h/a", "h/b"]);
    assert.equal(s.take(T0, { priorityOnly: true }), undefined, "nothing asked for");
    s.prioritize("h/b");
    assert.deepEqual(s.take(T0, { priorityOnly: true }), {
      name: "h/b",
      host: "h",
      priority: true,
      late: false,
    });
    assert.equal(s.take(T0, { priorityOnly: true }), undefined);
    assert.equal(s.take(T0)?.name, "h/a");
  });

  it("keeps a host at its cap while other hosts' repositories go ahead", () => {
    const s = schedule(2);
    s.sync(["slow/1", "slow/2", "slow/3", "slow/4", "fast/1", "fast/2"]);
    assert.deepEqual(takeAll(s, T0), ["slow/1", "fast/1", "slow/2", "fast/2"]);
    assert.equal(s.nextDue(), undefined, "what waits is on a full host: only a scan's end helps");
    s.done("fast/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.take(T0), undefined, "slow is still full");
    s.done("slow/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.take(T0)?.name, "slow/3");
    // Priority requests start on a full host (they count towards it).
    s.prioritize("slow/1");
    assert.deepEqual(s.take(T0), { name: "slow/1", host: "slow", priority: true, late: false });
    s.done("slow/2", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.take(T0), undefined, "slow/1's refresh holds the room slow/2 left");
  });

  it("follows the lookup: new repositories come in, missing ones leave once their scan ends", () => {
    const s = schedule();
    s.sync(["h/a", "h/b"]);
    assert.equal(s.take(T0)?.name, "h/a");
    s.sync(["h/b", "h/c"]);
    assert.equal(s.size, 3, "h/a stays while in flight");
    s.done("h/a", { dueAt: T0, likelihood: 1 });
    assert.equal(s.size, 2);
    assert.equal(s.dueAt("h/a"), undefined);
    assert.deepEqual(takeAll(s, T0), ["h/b", "h/c"]);
    s.done("h/b", { dueAt: T0 + MINUTE, likelihood: 1 });
    s.sync(["h/b", "h/c"]);
    assert.equal(s.dueAt("h/b"), T0 + MINUTE, "a lookup keeps the due times");
    s.prioritize("h/new");
    assert.equal(s.take(T0)?.name, "h/new", "a request may bring a repository in");
  });

  it("wakes a waiter on a change, at its timeout, or on abort", async () => {
    const s = schedule();
    const stop = new AbortController();
    const started = performance.now();
    await s.changed(stop.signal, 20);
    assert.ok(performance.now() - started >= 15, "the timeout");
    const waiting = s.changed(stop.signal, 60_000);
    s.sync(["h/a"]);
    await waiting;
    const aborted = s.changed(stop.signal, 60_000);
    stop.abort();
    await aborted;
    await s.changed(stop.signal, 60_000); // already aborted: at once
  });
});

describe("Schedule's bound on weight in flight", () => {
  /** A schedule bounded at 6,400 tags in flight (light: 100 or fewer), every repository weighed. */
  function weighed(weights: Record<string, number>): Schedule {
    const s = schedule(8, undefined, 6400);
    const names = Object.keys(weights);
    s.sync(names);
    assert.deepEqual(takeAll(s, T0), names, "unknown weights (never listed) all start");
    for (const name of names) {
      s.done(name, { dueAt: T0 + MINUTE, likelihood: 1, weight: weights[name] });
    }
    assert.equal(s.weightInFlight, 0);
    return s;
  }

  it("starts repositories while their tags fit, and the next once one ends", () => {
    const s = weighed({ "a/big": 4000, "b/big": 3000, "c/mid": 2000, "d/small": 50 });
    const at = T0 + MINUTE;
    // a/big and b/big are as urgent; a/big came first. b/big does not fit beside it and is
    // kept room: c/mid would fit alone but not with b/big's room; d/small is light.
    assert.deepEqual(takeAll(s, at), ["a/big", "d/small"]);
    assert.equal(s.weightInFlight, 4050);
    assert.equal(s.nextDue(), undefined, "nothing can start until a scan ends (no spin)");
    s.done("a/big", { dueAt: at + MINUTE, likelihood: 1 });
    assert.deepEqual(takeAll(s, at), ["b/big", "c/mid"], "the reserved one first");
    assert.equal(s.weightInFlight, 5050);
  });

  it("counts a repository heavier than the bound as three quarters of it", () => {
    const s = weighed({ "a/huge": 9000, "b/mid": 2000, "c/small": 10 });
    const at = T0 + MINUTE;
    assert.deepEqual(takeAll(s, at), ["a/huge", "c/small"], "4,800: room for light ones");
    assert.equal(s.weightInFlight, 4810);
    s.done("a/huge", { dueAt: at + 2 * MINUTE, likelihood: 1 });
    assert.deepEqual(takeAll(s, at), ["b/mid"]);
    s.done("b/mid", { dueAt: at + 3 * MINUTE, likelihood: 1 });
    // a/huge due again while c/small still runs: light ones in flight do not hold it back.
    assert.deepEqual(takeAll(s, at + 2 * MINUTE), ["a/huge"]);
  });

  it("counts a first scan's weight from its listing, and keeps what the scan reported", () => {
    const told: number[] = [];
    const s = new Schedule({
      hostOf: (name) => name.split("/")[0] ?? "",
      perHostConcurrency: 8,
      maxWeightInFlight: 6400,
      onWeightChange: (w) => told.push(w),
    });
    s.sync(["a/1", "a/2", "b/1"]);
    assert.equal(s.take(T0)?.name, "a/1");
    s.weigh("a/1", 4000);
    assert.equal(s.weightInFlight, 4000);
    assert.deepEqual(told, [4000], "told of the change (the metric)");
    // Unknown weights are light: they still start, while the weight in flight leaves room.
    assert.deepEqual(takeAll(s, T0), ["b/1", "a/2"]);
    s.weigh("b/1", 3000);
    s.weigh("a/2", 0);
    s.done("a/2", { dueAt: T0, likelihood: 1 });
    assert.deepEqual(takeAll(s, T0), [], "7,000 in flight: a light one waits for room too");
    s.done("a/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.weightInFlight, 3000);
    assert.deepEqual(takeAll(s, T0), ["a/2"]);
    s.done("b/1", { dueAt: T0 + MINUTE, likelihood: 1 });
    s.done("a/2", { dueAt: T0 + MINUTE, likelihood: 1 });
    assert.equal(s.weightInFlight, 0);
    // a/1 kept its listed weight (4,000) and b/1 its (3,000): not both at once.
    assert.deepEqual(takeAll(s, T0 + MINUTE), ["a/1", "a/2"]);
  });

  it("starts a light repository over the bound only on a host with nothing in flight", () => {
    const s = schedule(8, undefined, 6400);
    const names = ["a/big", "a/small", "b/big", "c/1", "c/2", "d/mid"];
    s.sync(names);
    assert.equal(takeAll(s, T0).length, 6, "never listed: all start");
    // Their listings turn out large: 7,000 in flight against 6,400.
    s.weigh("a/big", 4000);
    s.weigh("b/big", 3000);
    s.done("a/small", { dueAt: T0, likelihood: 1, weight: 10 });
    s.done("c/2", { dueAt: T0, likelihood: 1, weight: 50 });
    s.done("d/mid", { dueAt: T0, likelihood: 1, weight: 2000 });
    // d's host is idle but d/mid is heavy; a/small's host has a/big, c/2's has c/1.
    assert.deepEqual(takeAll(s, T0), []);
    s.done("c/1", { dueAt: T0 + MINUTE, likelihood: 1, weight: 0 });
    assert.deepEqual(takeAll(s, T0), ["c/2"], "light, its host idle: it starts over the bound");
    assert.equal(s.weightInFlight, 7050);
    assert.equal(s.nextDue(), undefined, "nothing else can start until a scan ends");
  });

  it("never holds a priority request back by weight", () => {
    const s = weighed({ "a/big": 4000, "b/big": 4000 });
    assert.deepEqual(takeAll(s, T0 + MINUTE), ["a/big"]);
    s.prioritize("b/big", ["v1"], { listing: false });
    assert.equal(s.take(T0 + MINUTE, { priorityOnly: true })?.name, "b/big");
    assert.equal(s.weightInFlight, 8000);
  });

  it("drops the reservation of a repository that leaves the lookup", () => {
    const s = weighed({ "a/big": 4000, "b/big": 3000, "c/mid": 2000 });
    assert.deepEqual(takeAll(s, T0 + MINUTE), ["a/big"], "b/big reserved, c/mid leaves it room");
    s.sync(["a/big", "c/mid"]);
    assert.deepEqual(takeAll(s, T0 + MINUTE), ["c/mid"]);
  });
});

/** A random `done` of a repository in flight (the `pick`th), due `dueIn` from now. */
const DONE_FIELDS = {
  kind: fc.constant("done" as const),
  pick: fc.nat(),
  dueIn: fc.integer({ min: -2 * MINUTE, max: 3 * MINUTE }),
  likelihood: fc.double({ min: 0.1, max: 1, noNaN: true }),
  retryLease: fc.boolean(),
};

describe("Schedule's kept next due times", () => {
  it("answer as a schedule that looks at every repository each time (random operations)", () => {
    const NAMES = ["a/1", "a/2", "a/3", "b/1", "b/2", "c/1"];
    const op = fc.oneof(
      fc.record({ kind: fc.constant("sync" as const), names: fc.subarray(NAMES) }),
      fc.record({
        kind: fc.constant("prioritize" as const),
        name: fc.constantFrom(...NAMES),
        tags: fc.option(fc.subarray(["v1", "v2"]), { nil: undefined }),
        listing: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant("take" as const),
        lane: fc.constantFrom("regular", "urgentOnly", "priorityOnly", "skipLate"),
        // Without a look at the lanes first, takes follow takes as in a turn of the loop
        // (what was kept after the last look is then all a take has).
        look: fc.boolean(),
      }),
      fc.record({
        ...DONE_FIELDS,
        unscanned: fc.boolean(),
        weight: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined }),
      }),
      fc.record({
        kind: fc.constant("weigh" as const),
        pick: fc.nat(),
        weight: fc.integer({ min: 0, max: 80 }),
      }),
      fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: MINUTE }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        // Weights up to 80 against a bound of 64 (light: 1 or less): every rule of weight
        // comes up, reservations and repositories heavier than the bound included.
        const kept = schedule(2, 30_000, 64);
        const fresh = schedule(2, 30_000, 64);
        let names: string[] = [];
        let now = T0;
        const inFlight: string[] = [];
        // A lookup of the same names changes nothing but drops whatever was kept.
        const forget = () => fresh.sync(names);
        for (const o of ops) {
          if (o.kind === "sync") {
            names = o.names;
            kept.sync(names);
            fresh.sync(names);
          } else if (o.kind === "prioritize") {
            if (!names.includes(o.name)) continue;
            kept.prioritize(o.name, o.tags, { listing: o.listing });
            fresh.prioritize(o.name, o.tags, { listing: o.listing });
          } else if (o.kind === "take") {
            const opts = o.lane === "regular" ? {} : { [o.lane]: true };
            if (o.look) {
              forget();
              assert.deepEqual(kept.nextDue(), fresh.nextDue());
              forget();
              assert.deepEqual(
                kept.nextDue({ urgentOnly: true }),
                fresh.nextDue({ urgentOnly: true }),
              );
            }
            forget();
            const got = kept.take(now, opts);
            assert.deepEqual(got, fresh.take(now, opts));
            if (got) inFlight.push(got.name);
            else if (o.lane !== "priorityOnly") {
              // Nothing to take now: the loop waits for the lane's next due time, which
              // must then lie ahead (or be none), or the loop would spin.
              const next =
                o.lane === "skipLate"
                  ? kept.nextDue({ skipLate: true, now })
                  : kept.nextDue({ urgentOnly: o.lane === "urgentOnly" });
              assert.ok(next === undefined || next > now, `${o.lane}: due ${next} at ${now}`);
            }
          } else if (o.kind === "done") {
            if (inFlight.length === 0) continue;
            const [name] = inFlight.splice(o.pick % inFlight.length, 1) as [string];
            const next = {
              dueAt: now + o.dueIn,
              likelihood: o.likelihood,
              retryLease: o.retryLease,
              unscanned: o.unscanned,
              weight: o.weight,
            };
            kept.done(name, next);
            fresh.done(name, next);
          } else if (o.kind === "weigh") {
            const name = inFlight[o.pick % Math.max(1, inFlight.length)];
            if (name === undefined) continue;
            kept.weigh(name, o.weight);
            fresh.weigh(name, o.weight);
          } else {
            now += o.ms;
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("take and nextDue follow the rules as written (random operations, a model)", () => {
    // The rules of the module comment, written again plainly: what a take gives in each lane
    // and when each lane next finds work, from what the test did (no weights or priority
    // requests here; the test above checks those against a schedule that keeps nothing).
    const PER_HOST = 2;
    const LATE_AFTER = 30_000;
    const NAMES = ["a/1", "a/2", "a/3", "a/4", "b/1", "b/2", "c/1"];
    interface Model {
      seq: number;
      dueAt: number;
      likelihood: number;
      retryLease: boolean;
      inFlight: boolean;
      watched: boolean;
      /** Never scanned (no `done` yet). */
      cold: boolean;
    }
    const op = fc.oneof(
      fc.record({ kind: fc.constant("sync" as const), names: fc.subarray(NAMES) }),
      fc.record({
        kind: fc.constant("take" as const),
        lane: fc.constantFrom("regular", "urgentOnly", "skipLate"),
      }),
      fc.record(DONE_FIELDS),
      fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: MINUTE }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const s = schedule(PER_HOST, LATE_AFTER);
        const model = new Map<string, Model>();
        let seq = 0;
        let now = T0;
        const host = (name: string) => name.split("/")[0];
        const hostLoad = (name: string) =>
          [...model].filter(([n, m]) => m.inFlight && host(n) === host(name)).length;
        // No scan is timed here: a host's fill left is its cold repositories (at least 1).
        const fillLeft = (name: string) =>
          Math.max(
            1,
            [...model].filter(([n, m]) => m.cold && m.watched && host(n) === host(name)).length,
          );
        const lateAt = (m: Model) =>
          m.dueAt === Number.NEGATIVE_INFINITY
            ? Number.POSITIVE_INFINITY
            : m.retryLease
              ? m.dueAt
              : m.dueAt + LATE_AFTER;
        const score = (m: Model) => {
          if (m.dueAt === Number.NEGATIVE_INFINITY || m.retryLease) return Number.POSITIVE_INFINITY;
          const overdue = now - m.dueAt;
          return overdue >= LATE_AFTER ? 1e12 + overdue : overdue * m.likelihood;
        };
        const expectedTake = (lane: string) => {
          let best: [string, Model] | undefined;
          for (const [name, m] of model) {
            if (m.inFlight || m.dueAt > now) continue;
            const late = now >= lateAt(m);
            if ((lane === "urgentOnly" && !late) || (lane === "skipLate" && late)) continue;
            if (hostLoad(name) >= (late ? 2 * PER_HOST : PER_HOST)) continue;
            if (best === undefined) {
              best = [name, m];
              continue;
            }
            const [bestName, b] = best;
            const [sa, sb] = [score(m), score(b)];
            const [la, lb] = [hostLoad(name), hostLoad(bestName)];
            // Of as urgent: a host with none in flight, then fewer in flight for the host's
            // fill left, then fewer in flight.
            const [fa, fb] = [(la + 1) * fillLeft(bestName), (lb + 1) * fillLeft(name)];
            const spreads =
              (la === 0) !== (lb === 0)
                ? la === 0
                : fa < fb || (fa === fb && (la < lb || (la === lb && m.seq < b.seq)));
            if (sa > sb || (sa === sb && spreads)) {
              best = [name, m];
            }
          }
          return best?.[0];
        };
        const expectedNextDue = (lane: string) => {
          let next: number | undefined;
          for (const [name, m] of model) {
            if (m.inFlight) continue;
            const load = hostLoad(name);
            let at: number | undefined;
            if (lane === "skipLate") at = load < PER_HOST && lateAt(m) > now ? m.dueAt : undefined;
            else if (lane === "regular" && load < PER_HOST) at = m.dueAt;
            else if (load < 2 * PER_HOST) at = lateAt(m);
            if (at === undefined || at === Number.POSITIVE_INFINITY) continue;
            if (next === undefined || at < next) next = at;
          }
          return next;
        };
        for (const o of ops) {
          if (o.kind === "sync") {
            s.sync(o.names);
            for (const name of o.names) {
              const m = model.get(name);
              if (m) m.watched = true;
              else {
                model.set(name, {
                  seq: seq++,
                  dueAt: Number.NEGATIVE_INFINITY,
                  likelihood: 1,
                  retryLease: false,
                  inFlight: false,
                  watched: true,
                  cold: true,
                });
              }
            }
            for (const [name, m] of model) {
              if (o.names.includes(name)) continue;
              if (m.inFlight) m.watched = false;
              else model.delete(name);
            }
          } else if (o.kind === "take") {
            for (const lane of ["regular", "urgentOnly", "skipLate"]) {
              const opts =
                lane === "skipLate"
                  ? { skipLate: true, now }
                  : { urgentOnly: lane === "urgentOnly", now };
              assert.equal(s.nextDue(opts), expectedNextDue(lane), `${lane} next due at ${now}`);
            }
            const opts = o.lane === "regular" ? {} : { [o.lane]: true };
            const want = expectedTake(o.lane);
            const got = s.take(now, opts);
            assert.equal(got?.name, want, `${o.lane} take at ${now}`);
            if (got) {
              const m = model.get(got.name) as Model;
              m.inFlight = true;
              assert.equal(got.late, now >= lateAt(m));
            }
          } else if (o.kind === "done") {
            const inFlight = [...model].filter(([, m]) => m.inFlight).map(([n]) => n);
            if (inFlight.length === 0) continue;
            const name = inFlight[o.pick % inFlight.length] as string;
            s.done(name, {
              dueAt: now + o.dueIn,
              likelihood: o.likelihood,
              retryLease: o.retryLease,
            });
            const m = model.get(name) as Model;
            if (!m.watched) model.delete(name);
            else
              Object.assign(m, {
                inFlight: false,
                cold: false,
                dueAt: now + o.dueIn,
                likelihood: o.likelihood,
                retryLease: o.retryLease,
              });
          } else {
            now += o.ms;
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
