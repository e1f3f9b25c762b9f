/**
 * A minimal memcached text-protocol client for tests: writes raw items behind the store's
 * back and reads an item's remaining TTL (`mg KEY t`), which memjs cannot.
 */
import { connect } from "node:net";

/** Sends one command and resolves with the reply up to the line that ends it. */
function exchange(address: string, command: Buffer, done: RegExp): Promise<string> {
  const at = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)) });
    let reply = "";
    socket.setTimeout(3000, () => {
      socket.destroy();
      reject(new Error(`memcached ${address} did not answer: ${reply}`));
    });
    socket.on("data", (d: Buffer) => {
      reply += d.toString("latin1");
      if (done.test(reply)) {
        socket.end();
        resolve(reply);
      }
    });
    socket.once("error", reject);
    socket.write(command);
  });
}

/** Stores `bytes` under `key` (a memcached key) on the server at `address`, as they are. */
export async function rawSet({
  address,
  key,
  bytes,
  ttlS = 600,
}: {
  address: string;
  key: string;
  bytes: Buffer;
  ttlS?: number | undefined;
}) {
  const head = Buffer.from(`set ${key} 0 ${ttlS} ${bytes.byteLength}\r\n`);
  const reply = await exchange(address, Buffer.concat([head, bytes, Buffer.from("\r\n")]), /\r\n$/);
  if (!reply.startsWith("STORED")) throw new Error(`raw set failed: ${reply}`);
}

/** The remaining TTL of `key` in seconds (-1: none), or undefined when it is not there. */
export async function rawTtl(address: string, key: string): Promise<number | undefined> {
  const reply = await exchange(address, Buffer.from(`mg ${key} t\r\n`), /\r\n$/);
  if (reply.startsWith("EN")) return undefined;
  const m = /^HD.* t(-?\d+)/.exec(reply);
  if (!m) throw new Error(`unexpected mg reply: ${reply}`);
  return Number(m[1]);
}

/** Whether `key` is on the server. */
export async function rawHas(address: string, key: string): Promise<boolean> {
  return (await rawTtl(address, key)) !== undefined;
}
