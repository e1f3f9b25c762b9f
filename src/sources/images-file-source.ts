/**
 * A file of image references, one per line (`#` starts a comment), re-read when it changes:
 * `fs.watch` on its directory catches edits, renames and Kubernetes ConfigMap symlink swaps
 * quickly, and a bounded poll of its status catches what watching misses (network file
 * systems, some containers).
 */
import { type FSWatcher, watch } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { readBoundedTextFile } from "../files/bounded-file.js";
import { parseImageRef } from "../image/ref.js";
import { Credentials } from "../registry/credentials/credentials.js";
import type { ImageCreds } from "../registry/credentials/image-creds.js";
import type { ImageSource } from "./image-source.js";

/** Settings of an images file source. */
export interface ImagesFileOptions {
  logger: Logger;
  /** Milliseconds between status checks (default 10 s; at least 100 ms). */
  pollMs?: number;
  /** Largest file read (default 1 MiB); a larger one is refused with a warning. */
  maxBytes?: number;
  /** Most repositories taken from the file (default 10,000). */
  maxEntries?: number;
  /**
   * Follow the file with `fs.watch` as well as the poll (default true); false polls only, as
   * on file systems without change events.
   */
  watch?: boolean;
}

/** The repositories named in a file, kept current as the file changes. */
export class ImagesFileSource implements ImageSource {
  readonly name: string;
  #current: string[] = [];
  #signature = "";
  #loaded: Promise<void> | undefined;
  #reading: Promise<void> = Promise.resolve();
  #watcher: FSWatcher | undefined;
  #poller: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  readonly #listeners = new Set<(names: string[]) => void>();

  /** The file read. */
  readonly path: string;
  readonly #opts: ImagesFileOptions;

  constructor(path: string, opts: ImagesFileOptions) {
    this.path = path;
    this.#opts = opts;
    this.name = `file:${path}`;
  }

  /** Reads the file and starts following it. */
  async start(): Promise<void> {
    await this.#reload();
    if (this.#opts.watch !== false) this.#startWatching();
    this.#poller = setInterval(
      () => this.#scheduleReload(),
      Math.max(100, this.#opts.pollMs ?? 10_000),
    );
    this.#poller.unref();
  }

  /** Watches the file's directory; where that fails, the poll alone follows the file. */
  #startWatching(): void {
    try {
      this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file === basename(this.path) || file.startsWith(".."))
          this.#scheduleReload();
      });
      this.#watcher.on("error", (err) => {
        this.#opts.logger.warn(
          { path: this.path, err: err.message },
          "cannot watch the images file; polling only",
        );
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (err) {
      this.#opts.logger.warn(
        { path: this.path, err: (err as Error).message },
        "cannot watch the images file; polling only",
      );
    }
  }

  /** Calls `listener` with the new list whenever the file's repositories change. */
  onChange(listener: (names: string[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async images(): Promise<ImageCreds> {
    this.#loaded ??= this.#reload();
    await this.#loaded;
    return new Map(this.#current.map((n) => [n, Credentials.none()]));
  }

  /** The repositories the file names now. */
  names(): string[] {
    return [...this.#current];
  }

  close(): void {
    this.#watcher?.close();
    clearInterval(this.#poller);
    clearTimeout(this.#debounce);
    this.#listeners.clear();
  }

  #scheduleReload(): void {
    clearTimeout(this.#debounce);
    // Editors write in several steps; wait for them to settle.
    this.#debounce = setTimeout(() => {
      this.#reload().catch((err: unknown) =>
        this.#opts.logger.warn(
          { path: this.path, err: (err as Error).message },
          "images file: a change listener failed",
        ),
      );
    }, 50);
    this.#debounce.unref();
  }

  /**
   * Reads the file again unless its status is unchanged. Reads run one at a time, so that an
   * older read finishing late can never replace a newer list.
   */
  #reload(): Promise<void> {
    this.#reading = this.#reading.then(
      () => this.#readIfChanged(),
      () => this.#readIfChanged(),
    );
    return this.#reading;
  }

  async #readIfChanged(): Promise<void> {
    const { logger } = this.#opts;
    let signature: string;
    let size: number;
    try {
      const s = await stat(this.path);
      signature = `${s.ino}:${s.size}:${s.mtimeMs}`;
      size = s.size;
    } catch (err) {
      if (this.#signature !== "missing") {
        logger.warn(
          { path: this.path, code: (err as NodeJS.ErrnoException).code },
          "images file cannot be read; watching no images from it",
        );
        this.#signature = "missing";
        this.#update([]);
      }
      return;
    }
    if (signature === this.#signature) return;
    this.#signature = signature;
    const maxBytes = this.#opts.maxBytes ?? 1024 * 1024;
    if (size > maxBytes) {
      logger.warn(
        { path: this.path, size, maxBytes },
        "images file too large; keeping the previous list",
      );
      return;
    }
    let text: string;
    try {
      // Bounded and regular files only: a FIFO must not hang the source, nor a device fill memory.
      text = await readBoundedTextFile(this.path, maxBytes);
    } catch (err) {
      logger.warn(
        { path: this.path, code: (err as NodeJS.ErrnoException).code },
        "images file cannot be read; keeping the previous list",
      );
      return;
    }
    this.#update(this.#parse(text));
  }

  #parse(text: string): string[] {
    const names = new Set<string>();
    const max = this.#opts.maxEntries ?? 10_000;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] ?? "").replace(/#.*$/, "").trim();
      if (line === "") continue;
      try {
        names.add(parseImageRef(line).name.toString());
      } catch (err) {
        this.#opts.logger.warn(
          { path: this.path, line: i + 1, err: (err as Error).message },
          "images file: skipping a line that is not an image reference",
        );
      }
      if (names.size >= max) {
        this.#opts.logger.warn(
          { path: this.path, max },
          "images file: too many repositories; ignoring the rest",
        );
        break;
      }
    }
    return [...names].sort();
  }

  #update(names: string[]): void {
    const changed = names.join("\n") !== this.#current.join("\n");
    this.#current = names;
    if (!changed) return;
    this.#opts.logger.info({ path: this.path, repositories: names.length }, "images file read");
    for (const listener of this.#listeners) listener(names);
  }
}
