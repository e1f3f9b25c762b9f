/**
 * The Redis Cluster hash slot of a key (CRC16/XMODEM of the key, or of its `{hash tag}`,
 * modulo 16384), so the Redis store can send a batch of reads to each node in one pipeline.
 */

/** Number of hash slots in a Redis Cluster. */
const CLUSTER_SLOTS = 16384;

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    t[i] = crc & 0xffff;
  }
  return t;
})();

/** CRC16/XMODEM, the checksum Redis Cluster hashes keys with. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) ^ TABLE[((crc >> 8) ^ b) & 0xff]!) & 0xffff;
  return crc;
}

/** The slot Redis Cluster stores `key` in (hash tags honoured, as the server does). */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, "utf8");
  const open = bytes.indexOf(0x7b); // {
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    // Only a non-empty tag counts; `{}` hashes the whole key.
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % CLUSTER_SLOTS;
  }
  return crc16(bytes) % CLUSTER_SLOTS;
}
