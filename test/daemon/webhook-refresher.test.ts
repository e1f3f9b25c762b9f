/**
 * Which watched repository a webhook event names, and what the refresher asks the coalescer
 * for: the named tag, the listing when no tag is named, nothing for untagged distribution
 * pushes or unwatched repositories; the freshness histogram from the sender's timestamp.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pino from "pino";
import { Registry } from "prom-client";
import type { RepositoryScanResult } from "../../src/cache/warmer-types.js";
import { RefreshCoalescer } from "../../src/daemon/refresh-coalescer.js";
import { matchWatchedRepository } from "../../src/daemon/webhook-match.js";
import { WebhookRefresher } from "../../src/daemon/webhook-refresher.js";

const WATCHED = [
  "registry.example.com:5000/team/app",
  "docker.io/library/alpine",
  "ghcr.io/org/tool",
  "mirror.internal/team/web",
  "other.example.com/team/web",
];

describe("matchWatchedRepository", () => {
  test("the canonical name, in any familiar form", () => {
    assert.equal(matchWatchedRepository("registry.example.com:5000/team/app", WATCHED), WATCHED[0]);
    assert.equal(matchWatchedRepository("alpine", WATCHED), "docker.io/library/alpine");
    assert.equal(matchWatchedRepository("ghcr.io/org/tool", WATCHED), "ghcr.io/org/tool");
  });

  test("a host regscan does not watch: the path, when one watched repository has it", () => {
    // The registry names the address the pusher used (e.g. its own, behind a proxy).
    assert.equal(matchWatchedRepository("127.0.0.1:5001/team/app", WATCHED), WATCHED[0]);
    // Harbor without a host.
    assert.equal(matchWatchedRepository("team/app", WATCHED), WATCHED[0]);
    // Two watched repositories have the path: ambiguous, so none.
    assert.equal(matchWatchedRepository("10.0.0.9:5000/team/web", WATCHED), undefined);
  });

  test("a watched host's unwatched repository is not another host's repository", () => {
    assert.equal(matchWatchedRepository("ghcr.io/team/app", WATCHED), undefined);
    assert.equal(matchWatchedRepository("registry.example.com:5000/x/y", WATCHED), undefined);
  });

  test("names that do not parse match nothing", () => {
    for (const bad of ["", "UPPER/Case", "a//b", "x:y:z/w", "../etc"]) {
      assert.equal(matchWatchedRepository(bad, WATCHED), undefined, bad);
    }
  });
});

function scan(repository: string, newTags: string[], startedAt: Date): RepositoryScanResult {
  return {
    repository,
    outcome: "scanned",
    tags: 1,
    filteredOut: 0,
    refreshed: newTags.length,
    unchanged: 0,
    fresh: 0,
    excluded: 0,
    artifacts: 0,
    errors: 0,
    newTags,
    movedTags: [],
    startedAt,
    durationMs: 5,
  };
}

describe("WebhookRefresher", () => {
  const setup = () => {
    const runs: Array<{ repository: string; tags: string[] | undefined; listing: boolean }> = [];
    const refreshes = new RefreshCoalescer({
      run: async (repository, tags, listing) => {
        runs.push({ repository, tags, listing });
      },
      minGapMs: 0,
      settleMs: 30,
    });
    let listener: ((r: RepositoryScanResult) => void) | undefined;
    const metrics = new Registry();
    let clock = Date.parse("2026-12-04T12:00:10Z");
    const refresher = new WebhookRefresher({
      watched: () => WATCHED,
      refreshes,
      onScan: (l) => {
        listener = l;
        return () => {
          listener = undefined;
        };
      },
      metrics,
      logger: pino({ level: "silent" }),
      now: () => clock,
    });
    return {
      runs,
      refresher,
      metrics,
      endScan: (r: RepositoryScanResult) => listener?.(r),
      tick: (ms: number) => {
        clock += ms;
      },
      close: () => {
        refresher.close();
        refreshes.close();
      },
    };
  };
  const settle = () => new Promise((r) => setTimeout(r, 100));

  test("named tags of one burst become one refresh of those tags; no tag is the listing", async () => {
    const t = setup();
    const d = t.refresher.deliver("distribution", [
      { repository: "127.0.0.1:5001/team/app", tag: "v1", action: "push" },
      { repository: "127.0.0.1:5001/team/app", tag: "v2", action: "push" },
      // The platform manifests of an index, pushed by digest: no tag changed.
      { repository: "127.0.0.1:5001/team/app", action: "push", digest: "sha256:aa" },
      { repository: "quay.io/not/watched", tag: "x", action: "push" },
    ]);
    assert.deepEqual(d, { refreshed: 2, unwatched: 1 });
    t.refresher.deliver("generic", [{ repository: "ghcr.io/org/tool", action: "push" }]);
    await settle();
    assert.deepEqual(
      t.runs.sort((x, y) => x.repository.localeCompare(y.repository)),
      [
        { repository: "ghcr.io/org/tool", tags: [], listing: true },
        { repository: WATCHED[0], tags: ["v1", "v2"], listing: false },
      ],
    );
    t.close();
  });

  test("a deleted tag asks for the listing; pushed ones alone do not", async () => {
    const t = setup();
    t.refresher.deliver("distribution", [
      { repository: WATCHED[0] as string, tag: "v1", action: "push" },
      { repository: WATCHED[0] as string, tag: "old", action: "delete" },
    ]);
    await settle();
    assert.deepEqual(t.runs, [{ repository: WATCHED[0], tags: ["v1", "old"], listing: true }]);
    t.close();
  });

  test("the time from the sender's timestamp to the scan that stored the change is observed once", async () => {
    const t = setup();
    t.refresher.deliver("distribution", [
      {
        repository: WATCHED[0] as string,
        tag: "v9",
        action: "push",
        timestamp: new Date("2026-12-04T12:00:09.5Z"),
      },
    ]);
    t.tick(700);
    t.endScan(scan(WATCHED[0] as string, ["v9"], new Date("2026-12-04T12:00:10.1Z")));
    t.endScan(scan(WATCHED[0] as string, ["v9"], new Date("2026-12-04T12:00:10.2Z")));
    const text = await t.metrics.metrics();
    assert.match(text, /regscan_tag_change_seen_seconds_count 1/);
    assert.match(text, /regscan_tag_change_seen_seconds_sum 1.2/);
    t.close();
  });
});
