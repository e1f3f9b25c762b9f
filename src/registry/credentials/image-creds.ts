/**
 * `ImageCreds`: the repositories to watch, each with the credentials to use for it (Flux
 * v1's `registry.ImageCreds`), and the lookup function that produces it.
 */
import type { Credentials } from "./credentials.js";

/** Credentials by canonical repository name (`ImageName.toString()`). */
export type ImageCreds = Map<string, Credentials>;

/** Produces the current set of repositories and their credentials; asked again every interval. */
export type ImageCredsLookup = () => ImageCreds | Promise<ImageCreds>;
