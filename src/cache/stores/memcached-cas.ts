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
  const response = await exchange(client, { operation: "GET", opcode: OP_GET, key });
  if (response.header.status === STATUS_KEY_NOT_FOUND) return undefined;
  check("GET", response.header.status);
  return { value: Buffer.from(response.val), cas: Buffer.from(response.header.cas) };
}

/** What {@link setIfUnchanged} writes, and the CAS value the item must still have. */
export interface UnchangedSet {
  key: string;
  value: Buffer;
  /** Memcached's expiry: seconds up to 30 days, a Unix time beyond. */
  expires: number;
  cas: Buffer;
}

/** Stores `value` only if the item still has CAS value `cas`; true when stored. */
export async function setIfUnchanged(
  client: MemcachedClient,
  { key, value, expires, cas }: UnchangedSet,
): Promise<boolean> {
  const extras = Buffer.alloc(8);
  extras.writeUInt32BE(expires >>> 0, 4);
  const response = await exchange(client, {
    operation: "SET",
    opcode: OP_SET,
    key,
    extras,
    value,
    cas,
  });
  return applied("SET", response.header.status);
}

/** Deletes the item only if it still has CAS value `cas`; true when deleted. */
export async function deleteIfUnchanged(
  client: MemcachedClient,
  key: string,
  cas: Buffer,
): Promise<boolean> {
  const response = await exchange(client, { operation: "DELETE", opcode: OP_DELETE, key, cas });
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

/** One binary-protocol request; extras and value are empty when left out. */
interface CasRequest {
  /** The command's name, for errors, e.g. `SET`. */
  operation: string;
  opcode: number;
  key: string;
  extras?: Buffer | undefined;
  value?: Buffer | undefined;
  /** The CAS value the item must still have; any when left out. */
  cas?: Buffer | undefined;
}

const EMPTY = Buffer.alloc(0);

/**
 * Sends one request on the client's (single) server and resolves with its response, on
 * memjs's connection and its per-request timeout; connection errors reject.
 */
function exchange(client: MemcachedClient, req: CasRequest): Promise<memjs.Response> {
  const server = client.servers[0];
  if (!server) {
    return Promise.reject(new Error(`memcached client has no server for ${req.operation}`));
  }
  client.incrSeq();
  const opaque = client.seq;
  const { opcode, key, extras = EMPTY, value = EMPTY } = req;
  const request = memjs.Utils.makeRequestBuffer(opcode, key, extras, value, opaque);
  req.cas?.copy(request, 16);
  return new Promise((resolve, reject) => {
    server.onResponse(opaque, resolve);
    server.onError(opaque, (err: Error | string) =>
      reject(err instanceof Error ? err : new Error(String(err))),
    );
    server.write(request);
  });
}
