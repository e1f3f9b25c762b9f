/**
 * Checks an `sqlite:PATH` before SQLite touches it: a typo must not create directories, and
 * a path under /proc, /sys or /dev (or a FIFO) must not hang or write into a device.
 */
import { realpathSync, type Stats, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { RegscanError } from "../../errors.js";
import { defaultSqlitePath } from "./sqlite.js";

/** A store that was to be read, not created, does not exist (e.g. `regscan get` before any scan). */
export class StoreNotFoundError extends RegscanError {
  readonly code = "STORE_NOT_FOUND";
  constructor(
    /** Which store, e.g. `sqlite:/home/me/.cache/regscan/cache.db`. */
    readonly store: string,
  ) {
    super(`cache store ${store} does not exist`);
  }
}

/** Where an `sqlite:` URL points, and whether that is the default location. */
export interface SqliteLocation {
  /** An absolute path, or `:memory:`. */
  path: string;
  /** The default location (`sqlite:` with nothing after it), whose directory regscan makes. */
  atDefault: boolean;
}

/**
 * The file the text after `sqlite:` names: `//` dropped, `~` expanded, resolved against the
 * working directory; the default location when empty. One function, so that `config check`
 * checks the very file the store would open.
 */
export function sqliteLocation(rest: string): SqliteLocation {
  const path = rest.startsWith("//") ? rest.slice(2) : rest;
  if (path === ":memory:") return { path, atDefault: false };
  if (path === "") return { path: defaultSqlitePath(), atDefault: true };
  const expanded = path === "~" || path.startsWith("~/") ? homedir() + path.slice(1) : path;
  return { path: resolve(expanded), atDefault: false };
}

/**
 * Why an `sqlite:` URL (the text after the colon) cannot work, without opening anything; for
 * checking a configuration before it runs.
 */
export function sqliteUrlProblem(rest: string): string | undefined {
  if (rest.includes("?")) return "sqlite: takes no query parameters";
  const { path, atDefault } = sqliteLocation(rest);
  return path === ":memory:" ? undefined : sqlitePathProblem(path, atDefault);
}

/** Pseudo file systems: a database there is a mistake, and opening some files there blocks. */
const PSEUDO_ROOTS = ["/proc", "/sys", "/dev"];
/** Real file systems under those: /dev/shm is a tmpfs, a fine place for a throwaway cache. */
const FILE_SYSTEMS_UNDER_PSEUDO = ["/dev/shm"];

/**
 * Why `path` (absolute) cannot hold an SQLite cache, or undefined when it can. A missing
 * parent directory is a problem unless `createDirectory` (the default location, whose
 * directory regscan makes itself).
 */
export function sqlitePathProblem(path: string, createDirectory: boolean): string | undefined {
  const pseudo = pseudoRoot(path);
  if (pseudo !== undefined) return `${path} is under ${pseudo}, which holds no files for a cache`;
  const dir = dirname(path);
  let dirStats: Stats;
  try {
    dirStats = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      return createDirectory ? undefined : `the directory ${dir} does not exist; create it first`;
    }
    return `the directory ${dir} cannot be used (${code ?? "error"})`;
  }
  if (!dirStats.isDirectory()) return `${dir} is not a directory`;
  // Through symbolic links, the same rule for where the file really is.
  const real = pseudoRoot(join(realpathSync(dir), basename(path)));
  if (real !== undefined) return `${path} is under ${real}, which holds no files for a cache`;
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch {
    return undefined; // SQLite creates it
  }
  if (!stats.isFile()) return `${path} is not a regular file (${kindOf(stats)})`;
  const target = pseudoRoot(realpathSync(path));
  if (target !== undefined) return `${path} is under ${target}, which holds no files for a cache`;
  return undefined;
}

function pseudoRoot(path: string): string | undefined {
  const under = (root: string) => path === root || path.startsWith(`${root}/`);
  if (FILE_SYSTEMS_UNDER_PSEUDO.some((root) => path.startsWith(`${root}/`))) return undefined;
  return PSEUDO_ROOTS.find(under);
}

function kindOf(stats: Stats): string {
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isDirectory()) return "a directory";
  if (stats.isSocket()) return "a socket";
  return "a device";
}
