/**
 * Acceptance 1 on the shared stores, memcached and Redis (see
 * support/registry-acceptance.ts); the past-deadline step leaves out the 5,000-tag
 * repository, which the sqlite file covers, to keep this file fast.
 */
import { type MemcachedServer, startMemcached } from "../support/memcached.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { describeWarmerAcceptance } from "./support/registry-acceptance.js";

let memcached: MemcachedServer;
let redis: RedisServer;

describeWarmerAcceptance(
  [
    {
      name: "memcached",
      start: async () => {
        memcached = await startMemcached();
      },
      url: () => `memcached://${memcached.address}`,
      stop: async () => memcached?.stop(),
    },
    {
      name: "redis",
      start: async () => {
        redis = await startRedis();
      },
      url: () => redis.url,
      stop: async () => redis?.stop(),
    },
  ],
  false,
);
