/**
 * Compare-and-swap requests memjs lacks (memcached binary protocol): a GET that returns
 * the item's CAS value, and a SET or DELETE that applies only while the item still has
 * it. The memcached store's leases use them so a holder never renews or deletes a lease
 * that expired and was taken by another replica in between.
 */
import memjs from "memjs";
import type { MemcachedClient } from "./memcached-connection.js";
import {
  MemcachedStatusError,
  STATUS_KEY_EXISTS,
  STATUS_KEY_NOT_FOUND,
  STATUS_OK,
} from "./memcached-protocol.js";

const OP_GET = 0x00;
const OP_SET = 0x01;
const OP_DELETE = 0x04;

/** An item read with its CAS value. */
export interface CasItem {
  value: Buffer;
  /** Opaque 8 bytes the server changes on every write of the item. */
  cas: Buffer;
}

/** The item at `key` with its CAS value, or undefined when there is none. */
export async function getWithCas(
  client: MemcachedClient,
  key: string,
): Promise<CasItem | undefined> {
  const response = await exchange(client, "GET", OP_GET, key, Buffer.alloc(0), Buffer.alloc(0));
  if (response.header.status === STATUS_KEY_NOT_FOUND) return undefined;
  check("GET", response.header.status);
  return { value: Buffer.from(response.val), cas: Buffer.from(response.header.cas) };
}

/** Stores `value` only if the item still has CAS value `cas`; true when stored. */
export async function setIfUnchanged(
  client: MemcachedClient,
  key: string,
  value: Buffer,
  expires: number,
  cas: Buffer,
): Promise<boolean> {
  const extras = Buffer.alloc(8);
  extras.writeUInt32BE(expires >>> 0, 4);
  const response = await exchange(client, "SET", OP_SET, key, extras, value, cas);
  return applied("SET", response.header.status);
}

/** Deletes the item only if it still has CAS value `cas`; true when deleted. */
export async function deleteIfUnchanged(
  client: MemcachedClient,
  key: string,
  cas: Buffer,
): Promise<boolean> {
  const none = Buffer.alloc(0);
  const response = await exchange(client, "DELETE", OP_DELETE, key, none, none, cas);
  return applied("DELETE", response.header.status);
}

function applied(operation: string, status: number): boolean {
  if (status === STATUS_KEY_EXISTS || status === STATUS_KEY_NOT_FOUND) return false;
  check(operation, status);
  return true;
}

function check(operation: string, status: number) {
  if (status !== STATUS_OK) throw new MemcachedStatusError(operation, status);
}

/**
 * Sends one request on the client's (single) server and resolves with its response, on
 * memjs's connection and its per-request timeout; connection errors reject.
 */
function exchange(
  client: MemcachedClient,
  operation: string,
  opcode: number,
  key: string,
  extras: Buffer,
  value: Buffer,
  cas?: Buffer,
): Promise<memjs.Response> {
  const server = client.servers[0];
  if (!server) return Promise.reject(new Error(`memcached client has no server for ${operation}`));
  client.incrSeq();
  const opaque = client.seq;
  const request = memjs.Utils.makeRequestBuffer(opcode, key, extras, value, opaque);
  cas?.copy(request, 16);
  return new Promise((resolve, reject) => {
    server.onResponse(opaque, resolve);
    server.onError(opaque, (err: Error | string) =>
      reject(err instanceof Error ? err : new Error(String(err))),
    );
    server.write(request);
  });
}
