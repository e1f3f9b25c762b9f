/**
 * How memcached keys are chosen: store keys that memcached would refuse (over 250 bytes,
 * spaces or control characters) are hashed, and every key goes to the server that a
 * stable hash picks over the sorted server list, so every replica maps keys alike.
 */
import { createHash } from "node:crypto";

/** Memcached's key length limit, in bytes. */
const MAX_MEMCACHED_KEY_BYTES = 250;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const REFUSED = /[\u0000-\u0020\u007f]/;

/** The key to use in memcached for a store key: itself when memcached accepts it, else a hash. */
export function memcachedKey(key: string): string {
  if (Buffer.byteLength(key) <= MAX_MEMCACHED_KEY_BYTES && !REFUSED.test(key)) return key;
  return `regscan:sha256:${createHash("sha256").update(key).digest("hex")}`;
}

/**
 * The server (`host:port`) that holds `key`: rendezvous hashing, so the choice depends
 * only on the key and the set of servers (not their order), and a server joining or
 * leaving moves only the keys it gains or had.
 */
export function serverFor(key: string, servers: readonly string[]): string | undefined {
  // One server wins every key; skipping the hash matters when a batch maps 10,000 keys.
  if (servers.length <= 1) return servers[0];
  let best: string | undefined;
  let bestScore = -1n;
  for (const server of servers) {
    const digest = createHash("sha1").update(server).update("\u0000").update(key).digest();
    const score = digest.readBigUInt64BE(0);
    if (score > bestScore || (score === bestScore && best !== undefined && server < best)) {
      best = server;
      bestScore = score;
    }
  }
  return best;
}
