/**
 * Include / exclude globs for image repositories, as Flux v1 matched them: `*` matches any
 * run of characters including `/`, `?` one character. A glob is tried against the canonical
 * name (`docker.io/library/alpine`) and the familiar one (`alpine`).
 */
import type { ImageName } from "../image/ref.js";

/** Flux v1's default exclusion. */
export const DEFAULT_IMAGE_EXCLUDES: readonly string[] = ["k8s.gcr.io/*"];

/** A compiled set of include and exclude globs. */
export class ImageFilter {
  readonly #include: RegExp[];
  readonly #exclude: RegExp[];

  constructor(include: readonly string[], exclude: readonly string[]) {
    this.#include = include.map(globToRegExp);
    this.#exclude = exclude.map(globToRegExp);
  }

  /** True when the repository is wanted: it matches an include (or there are none) and no exclude. */
  accepts(name: ImageName): boolean {
    const forms = namesOf(name);
    if (this.#exclude.some((re) => forms.some((f) => re.test(f)))) return false;
    return this.#include.length === 0 || this.#include.some((re) => forms.some((f) => re.test(f)));
  }
}

function namesOf(name: ImageName): string[] {
  const forms = [name.toString()];
  try {
    forms.push(name.familiar());
  } catch {
    // Only the canonical form when the familiar one is not available.
  }
  return forms;
}

/** `k8s.gcr.io/*` -> /^k8s\.gcr\.io\/.*$/ */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  for (const ch of glob) {
    if (ch === "*") out += ".*";
    else if (ch === "?") out += ".";
    else out += ch.replace(/[.+^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}
