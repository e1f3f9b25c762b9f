/**
 * A multi-key read on one memcached server in one round trip, which memjs lacks: the keys
 * as quiet GETKQ requests then a NOOP, all in one write; the server answers hits only, and
 * the NOOP's answer says the batch is done (memcached binary protocol).
 */
import type memjs from "memjs";
import type { MemcachedClient } from "./memcached-connection.js";
import { MemcachedStatusError, STATUS_KEY_NOT_FOUND, STATUS_OK } from "./memcached-protocol.js";

const MAGIC_REQUEST = 0x80;
const OP_GETKQ = 0x0d;
const OP_NOOP = 0x0a;
const HEADER_BYTES = 24;

/** One GETKQ per key then a NOOP, all with `opaque`, as one buffer. */
function multiGetRequest(keys: readonly string[], opaque: number): Buffer {
  const encoded = keys.map((k) => Buffer.from(k, "utf8"));
  const size = encoded.reduce((n, k) => n + HEADER_BYTES + k.byteLength, HEADER_BYTES);
  const out = Buffer.alloc(size);
  let at = 0;
  const header = (opcode: number, keyLength: number) => {
    out[at] = MAGIC_REQUEST;
    out[at + 1] = opcode;
    out.writeUInt16BE(keyLength, at + 2);
    // extras length, data type, vbucket: zero (alloc); total body = the key
    out.writeUInt32BE(keyLength, at + 8);
    out.writeUInt32BE(opaque >>> 0, at + 12);
    // CAS: zero
    at += HEADER_BYTES;
  };
  for (const key of encoded) {
    header(OP_GETKQ, key.byteLength);
    key.copy(out, at);
    at += key.byteLength;
  }
  header(OP_NOOP, 0);
  return out;
}

/**
 * Reads `keys` from the client's (single) server: a map from key to item for the hits.
 * Rejects on a connection error or timeout (memjs's, per request) or a refused request.
 */
export function multiGet(
  client: MemcachedClient,
  keys: readonly string[],
): Promise<Map<string, Buffer>> {
  const server = client.servers[0];
  if (!server) return Promise.reject(new Error("memcached client has no server"));
  client.incrSeq();
  const opaque = client.seq;
  const found = new Map<string, Buffer>();
  let refused: number | undefined;
  return new Promise((resolve, reject) => {
    const onResponse = (response: memjs.Response) => {
      const { opcode, status } = response.header;
      if (opcode === OP_NOOP) {
        if (refused === undefined) resolve(found);
        else reject(new MemcachedStatusError("GETKQ", refused));
        return;
      }
      if (status === STATUS_OK) {
        // A view of memjs's receive buffer, held only until decoded (decoding copies).
        found.set(response.key.toString("utf8"), response.val);
      } else if (status !== STATUS_KEY_NOT_FOUND) {
        refused ??= status;
      }
    };
    // memjs keeps a quiet handler for every reply with a body, until the bodiless NOOP.
    server.onResponse(opaque, Object.assign(onResponse, { quiet: true }));
    server.onError(opaque, (err: Error | string) =>
      reject(err instanceof Error ? err : new Error(String(err))),
    );
    server.write(multiGetRequest(keys, opaque));
  });
}
