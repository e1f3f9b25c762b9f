/**
 * How a value bigger than memcached's item size is still stored: compressed, and if still
 * too big, split into chunks that are written before the head item that names them. The
 * head carries a content hash, so chunks that were evicted or replaced make a miss.
 */
import { createHash, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { brotliCompress, brotliDecompress, constants } from "node:zlib";

const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);

/** The first byte of every item regscan writes to memcached. */
const Frame = {
  /** The envelope as is. */
  Inline: 0x01,
  /** The envelope, brotli-compressed. */
  InlineBrotli: 0x02,
  /** A head naming the chunks that hold the (compressed) envelope. */
  Head: 0x03,
  /** One chunk. */
  Chunk: 0x04,
} as const;

/** What a head item says about its chunks. */
export interface ChunkHead {
  /** Chunk keys share this per-write id, so a new write never mixes with an old one. */
  id: string;
  /** Number of chunks. */
  count: number;
  /** Total bytes over all chunks. */
  length: number;
  /** sha256 (hex) of the concatenated chunks. */
  sha256: string;
  /** Whether the concatenation is brotli-compressed. */
  brotli: boolean;
}

/** The items to write for one value: chunks first (in order), then the head. */
export interface FramedValue {
  chunks: Buffer[];
  head: Buffer;
  /** Bytes stored in total. */
  size: number;
  /** When chunked, the head's description. */
  chunkHead?: ChunkHead;
}

/**
 * The key of chunk `index` of the value at `key` written with `head`'s id (the head itself,
 * not its id, so the two strings cannot be passed the wrong way round).
 */
export function chunkKey(key: string, head: Pick<ChunkHead, "id">, index: number): string {
  return `${key}:chunk:${head.id}:${index}`;
}

/**
 * Frames an envelope for items of at most `itemBytes` (payload bytes, already net of
 * memcached's per-item overhead).
 */
export async function frameValue(envelope: Buffer, itemBytes: number): Promise<FramedValue> {
  if (envelope.byteLength + 1 <= itemBytes) {
    const head = Buffer.concat([Buffer.of(Frame.Inline), envelope]);
    return { chunks: [], head, size: head.byteLength };
  }
  const packed = await compress(envelope, {
    params: {
      // Quality 1: on repository JSON (mostly digests) it is as small as qualities 2-4 and
      // deflate, at a third to half of their time; warmers write often.
      [constants.BROTLI_PARAM_QUALITY]: 1,
      [constants.BROTLI_PARAM_SIZE_HINT]: envelope.byteLength,
    },
  });
  if (packed.byteLength + 1 <= itemBytes) {
    const head = Buffer.concat([Buffer.of(Frame.InlineBrotli), packed]);
    return { chunks: [], head, size: head.byteLength };
  }
  const per = itemBytes - 1;
  const chunks: Buffer[] = [];
  for (let at = 0; at < packed.byteLength; at += per) {
    chunks.push(Buffer.concat([Buffer.of(Frame.Chunk), packed.subarray(at, at + per)]));
  }
  const chunkHead: ChunkHead = {
    id: randomBytes(8).toString("hex"),
    count: chunks.length,
    length: packed.byteLength,
    sha256: createHash("sha256").update(packed).digest("hex"),
    brotli: true,
  };
  const head = Buffer.concat([Buffer.of(Frame.Head), Buffer.from(JSON.stringify(chunkHead))]);
  return {
    chunks,
    head,
    size: head.byteLength + chunks.reduce((n, c) => n + c.byteLength, 0),
    chunkHead,
  };
}

/** What a head item read back is. */
export type ReadFrame =
  | { kind: "envelope"; envelope: Buffer }
  | { kind: "chunked"; head: ChunkHead }
  | { kind: "invalid"; problem: string };

/** Reads a head item; compressed inline values are decompressed. */
export async function readFrame(item: Buffer): Promise<ReadFrame> {
  switch (item[0]) {
    case Frame.Inline:
      return { kind: "envelope", envelope: item.subarray(1) };
    case Frame.InlineBrotli:
      try {
        return { kind: "envelope", envelope: await decompress(item.subarray(1)) };
      } catch {
        return { kind: "invalid", problem: "compressed value does not decompress" };
      }
    case Frame.Head: {
      const head = parseHead(item.subarray(1));
      return head ? { kind: "chunked", head } : { kind: "invalid", problem: "bad chunk head" };
    }
    default:
      return { kind: "invalid", problem: "unknown frame" };
  }
}

/**
 * Joins chunks read back for `head`; undefined when one is missing, not a chunk, or the
 * whole does not match the head's length and hash (evicted, or a foreign write).
 */
export async function joinChunks(
  head: ChunkHead,
  items: ReadonlyArray<Buffer | null | undefined>,
): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  for (const item of items) {
    if (!item || item[0] !== Frame.Chunk) return undefined;
    parts.push(item.subarray(1));
  }
  const whole = Buffer.concat(parts);
  if (whole.byteLength !== head.length) return undefined;
  if (createHash("sha256").update(whole).digest("hex") !== head.sha256) return undefined;
  if (!head.brotli) return whole;
  try {
    return await decompress(whole);
  } catch {
    return undefined;
  }
}

function parseHead(bytes: Buffer): ChunkHead | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const h = raw as Record<string, unknown>;
  if (
    typeof h.id !== "string" ||
    !/^[0-9a-f]{1,64}$/.test(h.id) ||
    typeof h.count !== "number" ||
    !Number.isInteger(h.count) ||
    h.count < 1 ||
    h.count > 100_000 ||
    typeof h.length !== "number" ||
    typeof h.sha256 !== "string" ||
    typeof h.brotli !== "boolean"
  ) {
    return undefined;
  }
  return { id: h.id, count: h.count, length: h.length, sha256: h.sha256, brotli: h.brotli };
}
