/**
 * Image sources: where the daemon learns which repositories to watch (the configuration's
 * list, a file of references, a Kubernetes cluster). Each yields an `ImageCreds`; the
 * daemon merges them into the one lookup the warmer asks every interval.
 */
import type { Logger } from "pino";
import { parseImageName } from "../image/ref.js";
import { Credentials } from "../registry/credentials/credentials.js";
import type { ImageCreds, ImageCredsLookup } from "../registry/credentials/image-creds.js";
import type { ImageFilter } from "./image-glob.js";

/** One provider of repositories to watch. */
export interface ImageSource {
  /** A short name for logs, e.g. `static`, `file:/etc/regscan/images`, `kubernetes`. */
  readonly name: string;
  /** The repositories this source wants now, with the credentials it knows for them. */
  images(signal?: AbortSignal): Promise<ImageCreds>;
  /** Stops any watching the source does. */
  close?(): Promise<void> | void;
}

/**
 * One lookup over several sources: their repositories merged (credentials of a repository
 * found in several sources combined), filtered by the include / exclude globs. A failing
 * source is logged and its previous answer kept, so one broken source never empties the
 * watch list.
 */
export function combineSources(
  sources: readonly ImageSource[],
  filter: ImageFilter,
  logger: Logger,
): ImageCredsLookup {
  const lastGood = new Map<string, ImageCreds>();
  return async () => {
    const out: ImageCreds = new Map();
    const answers = await Promise.all(
      sources.map(async (source) => {
        try {
          const found = await source.images(AbortSignal.timeout(60_000));
          lastGood.set(source.name, found);
          return found;
        } catch (err) {
          logger.warn(
            {
              source: source.name,
              err: { code: (err as { code?: string }).code, message: (err as Error).message },
            },
            "image source failed; keeping its previous list",
          );
          return lastGood.get(source.name) ?? new Map<string, Credentials>();
        }
      }),
    );
    for (const found of answers) {
      for (const [name, creds] of found) {
        const existing = out.get(name);
        // The later source's credentials win for a host both have.
        out.set(name, existing ? existing.merge(creds) : creds);
      }
    }
    for (const name of [...out.keys()]) {
      if (!filter.accepts(parseImageName(name))) out.delete(name);
    }
    return out;
  };
}

/** A fixed list of repositories (the configuration's `repositories` and `--image` flags). */
export class StaticSource implements ImageSource {
  readonly name = "static";
  readonly #names: readonly string[];

  constructor(names: readonly string[]) {
    this.#names = names;
  }

  async images(): Promise<ImageCreds> {
    return new Map(this.#names.map((n) => [n, Credentials.none()]));
  }
}
