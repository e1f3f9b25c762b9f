/**
 * Reads a file an operator named (docker config, token file, CA bundle, images file) only
 * when it is a regular file, and never more than a size bound: `/dev/zero` must not fill the
 * memory, and a FIFO must not hang the process waiting for a writer.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { RegscanError } from "../errors.js";

/** Largest docker config (or pull-secret file) read: real ones are a few KiB. */
export const DOCKER_CONFIG_MAX_BYTES = 4 * 1024 * 1024;
/** Largest token file read: a bearer token is a line. */
export const TOKEN_FILE_MAX_BYTES = 64 * 1024;
/** Largest configuration file or PEM bundle read. */
export const CONFIG_FILE_MAX_BYTES = 4 * 1024 * 1024;

/** A file that was refused before (or while) reading it; `reason` says why, without the path. */
export abstract class BoundedFileError extends RegscanError {
  constructor(
    /** The file as named. */
    readonly path: string,
    /** Why it was refused, e.g. `not a regular file (a FIFO)`. */
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/** The path names a FIFO, a device, a directory or a socket rather than a regular file. */
export class NotRegularFileError extends BoundedFileError {
  readonly code = "NOT_A_REGULAR_FILE";
  constructor(
    path: string,
    /** What it is instead, e.g. `a FIFO`. */
    readonly kind: string,
  ) {
    super(path, `not a regular file (${kind})`);
  }
}

/** The file holds more than the bound allows. */
export class FileTooLargeError extends BoundedFileError {
  readonly code = "FILE_TOO_LARGE";
  constructor(
    path: string,
    readonly maxBytes: number,
  ) {
    super(path, `larger than the ${formatBytes(maxBytes)} allowed`);
  }
}

// O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; the
// fstat below then refuses it. It changes nothing for a regular file.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);
const CHUNK = 64 * 1024;

/**
 * The bytes of the regular file at `path`, at most `maxBytes` of them.
 *
 * @throws NotRegularFileError when `path` is not a regular file (checked on the opened file).
 * @throws FileTooLargeError when it holds more than `maxBytes` (checked while reading, so a
 *   file that grows, or a `/proc` file that reports size 0, is bounded too).
 * @throws the `fs` error (`ENOENT`, `EACCES`, ...) when it cannot be opened.
 */
export async function readBoundedFile(path: string, maxBytes: number): Promise<Buffer> {
  const handle: FileHandle = await open(path, OPEN_FLAGS);
  try {
    checkRegular(path, await handle.stat());
    const chunks = new BoundedChunks(path, maxBytes);
    for (;;) {
      const buffer = chunks.nextBuffer();
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (!chunks.took(buffer, bytesRead)) return chunks.bytes();
    }
  } finally {
    await handle.close();
  }
}

/** {@link readBoundedFile} as UTF-8 text. */
export async function readBoundedTextFile(path: string, maxBytes: number): Promise<string> {
  return (await readBoundedFile(path, maxBytes)).toString("utf8");
}

/** {@link readBoundedFile} for callers that cannot wait (start-up code that is synchronous). */
export function readBoundedFileSync(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    checkRegular(path, fstatSync(fd));
    const chunks = new BoundedChunks(path, maxBytes);
    for (;;) {
      const buffer = chunks.nextBuffer();
      const bytesRead = readSync(fd, buffer, 0, buffer.length, null);
      if (!chunks.took(buffer, bytesRead)) return chunks.bytes();
    }
  } finally {
    closeSync(fd);
  }
}

/** What the asynchronous and the synchronous reader share: the chunks read and the bound. */
class BoundedChunks {
  readonly #chunks: Buffer[] = [];
  #total = 0;
  readonly #path: string;
  readonly #maxBytes: number;

  constructor(path: string, maxBytes: number) {
    this.#path = path;
    this.#maxBytes = maxBytes;
  }

  /** A buffer for the next read, reaching one byte past the bound so that a larger file shows. */
  nextBuffer(): Buffer {
    return Buffer.allocUnsafe(Math.min(CHUNK, this.#maxBytes + 1 - this.#total));
  }

  /** Keeps what a read put in `buffer`; false at the end of the file. */
  took(buffer: Buffer, bytesRead: number): boolean {
    if (bytesRead === 0) return false;
    this.#total += bytesRead;
    if (this.#total > this.#maxBytes) throw new FileTooLargeError(this.#path, this.#maxBytes);
    this.#chunks.push(buffer.subarray(0, bytesRead));
    return true;
  }

  bytes(): Buffer {
    return Buffer.concat(this.#chunks, this.#total);
  }
}

function checkRegular(path: string, stats: Stats): void {
  if (stats.isFile()) return;
  throw new NotRegularFileError(path, kindOf(stats));
}

function kindOf(stats: Stats): string {
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isDirectory()) return "a directory";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  return "not a file";
}

function formatBytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}
