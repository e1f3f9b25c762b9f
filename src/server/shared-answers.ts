/**
 * Repository answers shared through the store by every replica reading it: a replica that
 * builds an answer writes it, gzip-compressed, under the repository's answer key with the
 * record version it was built from; another replica (or this one, once its own answer
 * cache let it go) serves those bytes while the version holds instead of building again.
 * A build costs a store read of the index and images and milliseconds of JSON; a shared
 * answer costs one store read and a CRC-32 of its gzip (bench:scale's readers go round
 * thousands of repositories, more than any one replica's answer cache holds).
 */
import { promisify } from "node:util";
import { crc32, gzip } from "node:zlib";
import type { Logger } from "pino";
import { Counter, type Registry as MetricsRegistry } from "prom-client";
import { Keys } from "../cache/keys.js";
import type { Store } from "../cache/store.js";
import type { ImageName } from "../image/ref.js";
import type { GzipAnswer } from "./gzip-answer.js";
import { type RepositoryText, textBytes } from "./repository-answer.js";

const gzipAsync = promisify(gzip);

/**
 * What the value starts with: the format's name and version. A change to the answer's JSON
 * changes it, so that replicas of two versions sharing a store during an upgrade never
 * serve each other's answers.
 */
const MAGIC = Buffer.from("RSA2", "latin1");

/**
 * Largest answer shared, uncompressed (2 MiB, about 3,500 tags): its gzip (a fifth of it,
 * about 400 KB) stays under memcached's default 1 MB item, and compressing it (on libuv's
 * pool, about 10 ms) is still small beside the build it saves.
 */
export const MAX_SHARED_ANSWER_BYTES = 2 * 1024 * 1024;

/** What a stored answer says about itself, before its gzip. */
interface AnswerHeader {
  /** The repository record's version the answer was built from. */
  version: string;
  /** What else shapes the answer (the API's label decorators): see {@link SharedAnswersOptions.variant}. */
  variant: string;
  /** When it was built, ms since the epoch. */
  builtAt: number;
  /** Bytes of the answer unzipped. */
  bytes: number;
  /**
   * CRC-32 of the gzip's own bytes as written (the gzip's trailer has the CRC of the text,
   * which only a whole unzip checks): a reader checks the value is whole and unchanged in
   * microseconds where unzipping it took a millisecond of the API's loop per 100 tags.
   */
  crc: number;
}

/** A shared answer read back. */
export interface SharedAnswer {
  /**
   * Its gzip as stored, checked against the header's CRC-32 and length: kept, and sent as it
   * is to clients that accept gzip.
   */
  gzip: GzipAnswer;
  /** When it was built (by whichever replica), ms since the epoch. */
  builtAt: number;
}

/** What {@link SharedAnswers} reads and writes with. */
export interface SharedAnswersOptions {
  store: Store;
  /** Key namespace; must match the warmer's (default `new Keys()`). */
  keys?: Keys | undefined;
  /**
   * What shapes an answer besides the record (the configured label decorators): replicas
   * configured differently write the same key but never serve each other's answers.
   */
  variant: string;
  /** How old an answer may be served (default 60 s, as the replica's own answer cache). */
  maxAgeMs?: number | undefined;
  metrics: MetricsRegistry;
  logger: Logger;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: (() => number) | undefined;
}

/** A value read from a repository's answer key, not yet checked; or word the read failed. */
export type FetchedAnswer = { value: Uint8Array | undefined } | { failed: true };

/** Results of reads and writes, for `regscan_api_shared_answers_total`. */
type Result = "hit" | "miss" | "stale" | "corrupt" | "error" | "written" | "write_error";

/** Reads and writes the answers shared through the store. */
export class SharedAnswers {
  readonly #store: Store;
  readonly #keys: Keys;
  readonly #variant: string;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #results: Counter<"result">;

  constructor(opts: SharedAnswersOptions) {
    this.#store = opts.store;
    this.#keys = opts.keys ?? new Keys();
    this.#variant = opts.variant;
    this.#maxAgeMs = opts.maxAgeMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
    this.#logger = opts.logger;
    this.#results =
      (opts.metrics.getSingleMetric("regscan_api_shared_answers_total") as
        | Counter<"result">
        | undefined) ??
      new Counter({
        name: "regscan_api_shared_answers_total",
        help: "Reads and writes of repository answers shared through the store, by result",
        labelNames: ["result"],
        registers: [opts.metrics],
      });
  }

  /**
   * The answer shared for `name` at `version`, if one was written for it and is younger
   * than the maximum age; undefined otherwise, and when the store fails or the value does
   * not decode (logged, counted: the caller builds, and its write replaces the value).
   */
  async read(
    name: ImageName,
    version: string,
    signal: AbortSignal,
  ): Promise<SharedAnswer | undefined> {
    return this.answerOf(name, version, await this.fetch(name, signal));
  }

  /**
   * What the store holds under `name`'s answer key, not yet checked: fetched before the
   * record's version is known, it goes in the same round trip as the record's read.
   * Says so when the store fails (logged now, counted when checked); never rejects.
   */
  async fetch(name: ImageName, signal: AbortSignal): Promise<FetchedAnswer> {
    try {
      return { value: (await this.#store.get(this.#keys.answer(name), { signal }))?.value };
    } catch (err) {
      this.#logger.debug({ err, repository: name.toString() }, "shared answer not read");
      return { failed: true };
    }
  }

  /** The answer in `fetched` (see {@link fetch}) if it is `name`'s at `version`, as {@link read}. */
  async answerOf(
    name: ImageName,
    version: string,
    fetched: FetchedAnswer,
  ): Promise<SharedAnswer | undefined> {
    if ("failed" in fetched) {
      this.#count("error");
      return undefined;
    }
    const { value } = fetched;
    const key = this.#keys.answer(name);
    if (value === undefined) {
      this.#count("miss");
      return undefined;
    }
    const decoded = decodeValue(value);
    if (typeof decoded === "string") return this.#corrupt(name, key, decoded);
    const { header, body } = decoded;
    if (
      header.version !== version ||
      header.variant !== this.#variant ||
      this.#now() - header.builtAt >= this.#maxAgeMs
    ) {
      this.#count("stale");
      return undefined;
    }
    const unfit = gzipUnfit(body, header);
    if (unfit !== undefined) return this.#corrupt(name, key, unfit);
    this.#count("hit");
    // A copy: the value may be a view of a store client's larger read buffer, all of which
    // a kept view would keep.
    return { gzip: { gzip: Buffer.from(body), bytes: header.bytes }, builtAt: header.builtAt };
  }

  /**
   * Shares `text`, built at `builtAt` from `name`'s record at `version` (nothing when it is
   * over {@link MAX_SHARED_ANSWER_BYTES}), and gives its gzip. Never rejects: a failed
   * write is counted and logged, costs the next reader a build, and gives nothing.
   */
  async write(
    name: ImageName,
    version: string,
    text: RepositoryText,
    builtAt: number,
    signal: AbortSignal,
  ): Promise<GzipAnswer | undefined> {
    const bytes = textBytes(text);
    if (bytes > MAX_SHARED_ANSWER_BYTES) return undefined;
    try {
      const whole = text.length === 1 ? (text[0] as Buffer) : Buffer.concat(text);
      const zipped = await gzipAsync(whole, { level: 1 });
      const header: AnswerHeader = {
        version,
        variant: this.#variant,
        builtAt,
        bytes,
        crc: crc32(zipped),
      };
      const head = Buffer.from(JSON.stringify(header), "utf8");
      const size = Buffer.alloc(4);
      size.writeUInt32BE(head.length);
      const value = Buffer.concat([MAGIC, size, head, zipped]);
      // Kept for twice its age at most, not the hour of the records: an old answer is never
      // served (a reader checks its age), and the store's size is to follow the images.
      await this.#store.set(this.#keys.answer(name), new Date(builtAt + this.#maxAgeMs), value, {
        signal,
        keepMs: 2 * this.#maxAgeMs,
      });
      this.#count("written");
      return { gzip: zipped, bytes };
    } catch (err) {
      this.#count("write_error");
      this.#logger.debug({ err, repository: name.toString() }, "shared answer not written");
      return undefined;
    }
  }

  #count(result: Result): void {
    this.#results.inc({ result });
  }

  #corrupt(name: ImageName, key: string, reason: string): undefined {
    this.#count("corrupt");
    this.#logger.warn(
      { repository: name.toString(), key, reason },
      "shared answer does not decode; building it again",
    );
    return undefined;
  }
}

/** A stored value's header and gzip, or why it is not a shared answer of this format. */
function decodeValue(value: Uint8Array): { header: AnswerHeader; body: Buffer } | string {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    return "not a shared answer of this format (its first bytes)";
  }
  const headBytes = buf.readUInt32BE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (start + headBytes > buf.length) return "its header runs past the value";
  let header: unknown;
  try {
    header = JSON.parse(buf.toString("utf8", start, start + headBytes));
  } catch {
    return "its header is not JSON";
  }
  if (!isHeader(header)) {
    return "its header lacks a version, variant, build time, length or CRC-32";
  }
  return { header, body: buf.subarray(start + headBytes) };
}

/**
 * Why `gzip` is not the one the header describes, if it is not: one gzip member (its first
 * bytes), whose trailer states the header's length unzipped, with the header's CRC-32 over
 * every byte. Written by a replica of this format, such a gzip unzips to that many bytes.
 */
function gzipUnfit(gzip: Buffer, header: AnswerHeader): string | undefined {
  if (gzip.length < 18 || gzip[0] !== 0x1f || gzip[1] !== 0x8b || gzip[2] !== 8) {
    return "its body is not a gzip member";
  }
  const stated = gzip.readUInt32LE(gzip.length - 4);
  // ISIZE is the length modulo 2^32; answers are at most 2 MiB.
  if (stated !== header.bytes) return `its gzip says ${stated} bytes, header says ${header.bytes}`;
  const crc = crc32(gzip);
  if (crc !== header.crc) return `its gzip's CRC-32 is ${crc}, header says ${header.crc}`;
  return undefined;
}

function isHeader(v: unknown): v is AnswerHeader {
  if (typeof v !== "object" || v === null) return false;
  const h = v as Record<string, unknown>;
  return (
    typeof h.version === "string" &&
    typeof h.variant === "string" &&
    typeof h.builtAt === "number" &&
    Number.isSafeInteger(h.bytes) &&
    (h.bytes as number) >= 0 &&
    (h.bytes as number) <= MAX_SHARED_ANSWER_BYTES &&
    Number.isInteger(h.crc) &&
    (h.crc as number) >= 0 &&
    (h.crc as number) <= 0xffffffff
  );
}
