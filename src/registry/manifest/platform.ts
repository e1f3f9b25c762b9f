/**
 * Platforms (`os/arch[/variant]`): parsing what users type, normalising the way containerd
 * does (`aarch64` is `arm64`, `arm64/v8` is `arm64`, `arm` is `arm/v7`), formatting, and
 * choosing the best manifest of an index for a wanted platform.
 */
import { RegscanError } from "../../errors.js";
import type { Platform } from "../../image/info.js";
import { withoutUndefined } from "../../without-undefined.js";

/** The platform described when nobody says otherwise (as Flux v1 did). */
export const DEFAULT_PLATFORM: Readonly<Platform> = Object.freeze({
  os: "linux",
  architecture: "amd64",
});

/** A platform string that is not `os/arch[/variant]`. */
export class InvalidPlatformError extends RegscanError {
  readonly code = "INVALID_PLATFORM";
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid platform ${JSON.stringify(input.slice(0, 100))}: ${reason}`);
  }
}

const PART = /^[a-z0-9._-]+$/;

/**
 * Parses `os/arch[/variant]` (e.g. `linux/arm64`, `linux/arm/v7`) into a normalised
 * platform; throws `InvalidPlatformError` and nothing else.
 */
export function parsePlatform(input: string): Platform {
  if (typeof input !== "string" || input.length > 100) {
    throw new InvalidPlatformError(String(input), "expected OS/ARCH[/VARIANT]");
  }
  const parts = input.trim().toLowerCase().split("/");
  if (parts.length < 2 || parts.length > 3) {
    throw new InvalidPlatformError(input, "expected OS/ARCH[/VARIANT], e.g. linux/arm64");
  }
  for (const part of parts) {
    if (!PART.test(part)) {
      throw new InvalidPlatformError(input, "each part must be letters, digits, '.', '_' or '-'");
    }
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalisePlatform(
    variant === undefined ? { os, architecture } : { os, architecture, variant },
  );
}

/**
 * The platform as containerd normalises it: lower case; `x86_64` -> `amd64`, `aarch64` ->
 * `arm64`, `i386` -> `386`; `arm64/v8` -> `arm64`; `arm` (no variant) -> `arm/v7`;
 * `armhf` -> `arm/v7`; `armel` -> `arm/v6`; `macos` -> `darwin`. `osVersion` is kept.
 */
export function normalisePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === "macos") os = "darwin";
  let arch = p.architecture.toLowerCase();
  let variant: string | undefined = p.variant?.toLowerCase() || undefined;
  switch (arch) {
    case "i386":
      arch = "386";
      variant = undefined;
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      arch = "amd64";
      if (variant === "v1") variant = undefined;
      break;
    case "aarch64":
    case "arm64":
      arch = "arm64";
      if (variant === "8" || variant === "v8" || variant === "v8.0") variant = undefined;
      else if (variant === "9" || variant === "9.0" || variant === "v9.0") variant = "v9";
      break;
    case "armhf":
      arch = "arm";
      variant = "v7";
      break;
    case "armel":
      arch = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === undefined || variant === "7") variant = "v7";
      else if (variant === "5" || variant === "6" || variant === "8") variant = `v${variant}`;
      break;
  }
  return withoutUndefined<Platform>({ os, architecture: arch, variant, osVersion: p.osVersion });
}

/** `os/arch[/variant]`, as given (not normalised). */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** Whether two platforms are the same once normalised (`osVersion` ignored). */
export function platformsEqual(a: Platform, b: Platform): boolean {
  const x = normalisePlatform(a);
  const y = normalisePlatform(b);
  return x.os === y.os && x.architecture === y.architecture && x.variant === y.variant;
}

/** The variant as a number (`v7` -> 7), for the fallbacks within one architecture. */
function variantNumber(variant: string | undefined, unset: number): number | undefined {
  if (variant === undefined) return unset;
  const m = /^v(\d+)$/.exec(variant);
  return m ? Number(m[1]) : undefined;
}

/**
 * How well `candidate` serves `wanted`: 0 is an exact match, higher is a worse fallback,
 * `undefined` is no match. The fallbacks are containerd's within one architecture: `arm/v7`
 * runs `arm/v6` and `arm/v5`; `amd64/v3` runs `amd64/v2` and `amd64`. Never across
 * architectures or operating systems, so the image described is one that really runs there.
 */
function matchScore(wanted: Platform, candidate: Platform): number | undefined {
  if (wanted.os !== candidate.os || wanted.architecture !== candidate.architecture)
    return undefined;
  if (wanted.variant === candidate.variant) return 0;
  if (wanted.architecture === "arm" || wanted.architecture === "amd64") {
    const unset = wanted.architecture === "amd64" ? 1 : 7;
    const w = variantNumber(wanted.variant, unset);
    const c = variantNumber(candidate.variant, unset);
    if (w === undefined || c === undefined || c > w) return undefined;
    if (wanted.architecture === "arm" && c < 5) return undefined;
    return w - c;
  }
  return undefined;
}

/**
 * The best descriptor of an index for `wanted` (exact match first, then the closest
 * fallback; the first listed wins a tie), or `undefined`. Descriptors without a platform
 * are never chosen.
 */
export function choosePlatformDescriptor<D extends { platform?: Platform | undefined }>(
  descriptors: readonly D[],
  wanted: Platform,
): D | undefined {
  const want = normalisePlatform(wanted);
  let best: D | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const d of descriptors) {
    if (!d.platform) continue;
    const score = matchScore(want, normalisePlatform(d.platform));
    if (score !== undefined && score < bestScore) {
      best = d;
      bestScore = score;
    }
  }
  return best;
}
