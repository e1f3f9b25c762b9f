/**
 * How stale a repository is, in the API (issue 13): `GET /v1/repositories/{name}` says in
 * headers (its body is cached per stored version) the seconds since the tags were last
 * listed and the interval applied now; `GET /v1/repositories` has both per repository.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import type { RepositoryMetadata } from "../../src/image/info.js";
import type { ImageName } from "../../src/image/ref.js";
import type { Registry } from "../../src/registry/registry.js";
import { ApiServer } from "../../src/server/api-server.js";
import type {
  RefreshRequestOutcome,
  RepositoryStatus,
  TagEvent,
  WarmerControl,
} from "../../src/server/warmer-control.js";

const APP = "localhost:5000/team/app";
const NEVER = "localhost:5000/team/never";

const registry: Registry = {
  getImageRepositoryMetadata: async (): Promise<RepositoryMetadata> => ({
    tags: [],
    images: new Map(),
  }),
  getImage: async () => {
    throw new Error("not used");
  },
};

function statusOf(name: string): RepositoryStatus {
  return name === APP
    ? {
        repository: APP,
        scanning: false,
        lastUpdate: new Date(Date.now() - 95_000),
        intervalMs: 4 * 60_000,
      }
    : { repository: name, scanning: false, intervalMs: 60_000 };
}

class Warmer implements WarmerControl {
  readonly repositoryStatus?: (name: ImageName) => RepositoryStatus | undefined;
  constructor(local: boolean) {
    if (local) this.repositoryStatus = (name) => statusOf(name.toString());
  }
  async statuses(): Promise<RepositoryStatus[]> {
    return [statusOf(APP), statusOf(NEVER)];
  }
  async isWatched(name: ImageName): Promise<boolean> {
    return [APP, NEVER].includes(name.toString());
  }
  requestRefresh(): RefreshRequestOutcome {
    return "started";
  }
  subscribe(_listener: (e: TagEvent) => void): () => void {
    return () => {};
  }
}

describe("repository staleness in the API", () => {
  const servers: ApiServer[] = [];
  const ports: number[] = [];

  /** When another replica last listed APP, as the stored record says (servers 2 and 3). */
  const storedLastUpdate = new Date(Date.now() - 12_000);

  before(async () => {
    // 0: this replica's status only; 1: no status at all; 2: this replica's status and the
    // stored record, which another replica wrote since; 3: the stored record only.
    for (const [local, stored] of [
      [true, false],
      [false, false],
      [true, true],
      [false, true],
    ] as const) {
      const server = new ApiServer({
        registry,
        warmer: new Warmer(local),
        metrics: new MetricsRegistry(),
        logger: pino({ level: "silent" }),
        ready: async () => {},
        repositoryState: stored
          ? async (name) =>
              name.toString() === APP ? { version: "1", lastUpdate: storedLastUpdate } : undefined
          : undefined,
      });
      servers.push(server);
      ports.push((await server.listen("127.0.0.1:0")).port);
    }
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.close(1000)));
  });

  test("a repository's answer carries its staleness and interval in headers", async () => {
    const res = await fetch(`http://127.0.0.1:${ports[0]}/v1/repositories/${APP}`);
    assert.equal(res.status, 200);
    const stale = Number(res.headers.get("x-regscan-stale-seconds"));
    assert.ok(stale >= 95 && stale <= 97, `${stale} s`);
    assert.equal(res.headers.get("x-regscan-interval-seconds"), "240");
    assert.deepEqual(await res.json(), { name: APP, tags: [], images: {} });

    const head = await fetch(`http://127.0.0.1:${ports[0]}/v1/repositories/${APP}`, {
      method: "HEAD",
    });
    assert.equal(head.headers.get("x-regscan-interval-seconds"), "240");

    const never = await fetch(`http://127.0.0.1:${ports[0]}/v1/repositories/${NEVER}`);
    assert.equal(never.headers.get("x-regscan-stale-seconds"), null, "never listed");
    assert.equal(never.headers.get("x-regscan-interval-seconds"), "60");
    await never.arrayBuffer();

    const without = await fetch(`http://127.0.0.1:${ports[1]}/v1/repositories/${APP}`);
    assert.equal(without.status, 200);
    assert.equal(without.headers.get("x-regscan-stale-seconds"), null, "no status to tell");
    await without.arrayBuffer();
  });

  test("staleness is the cluster's: the stored record's last listing, by any replica", async () => {
    const both = await fetch(`http://127.0.0.1:${ports[2]}/v1/repositories/${APP}`);
    assert.equal(both.status, 200);
    const stale = Number(both.headers.get("x-regscan-stale-seconds"));
    // This replica listed it 95 s ago, another 12 s ago: the later listing counts.
    assert.ok(stale >= 12 && stale <= 14, `${stale} s`);
    assert.equal(both.headers.get("x-regscan-interval-seconds"), "240");
    await both.arrayBuffer();

    const storedOnly = await fetch(`http://127.0.0.1:${ports[3]}/v1/repositories/${APP}`);
    const alone = Number(storedOnly.headers.get("x-regscan-stale-seconds"));
    assert.ok(alone >= 12 && alone <= 14, `${alone} s without a status of this replica's`);
    await storedOnly.arrayBuffer();
  });

  test("the list has both per repository", async () => {
    const res = await fetch(`http://127.0.0.1:${ports[0]}/v1/repositories`);
    const body = (await res.json()) as { repositories: Array<Record<string, unknown>> };
    const [app, never] = body.repositories;
    assert.ok(Number(app?.staleSeconds) >= 95 && Number(app?.staleSeconds) <= 97);
    assert.equal(app?.intervalSeconds, 240);
    assert.equal(never?.staleSeconds, undefined);
    assert.equal(never?.intervalSeconds, 60);
  });
});
