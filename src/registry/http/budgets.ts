/**
 * Request budgets per registry host: requests per second and burst, from the user's
 * `registry.budgets` first, then the defaults below for the public registries whose limits
 * are known, then the global `rps` / `burst`. Host keys are `host[:port]` or patterns with
 * `*` standing for one DNS label (`*.dkr.ecr.*.amazonaws.com`).
 */
import { RegscanError } from "../../errors.js";

/** Requests per second at full speed, and how many may go at once after a quiet spell. */
export interface RequestBudget {
  rps: number;
  burst: number;
}

/** Where a host's budget came from. */
export type BudgetSource = "configured" | "default" | "global";

/** A host's budget and where it came from (`key`: the configured or default key that matched). */
export interface HostBudget extends RequestBudget {
  source: BudgetSource;
  key: string | undefined;
}

/** A budget key or value that cannot be used. */
export class InvalidBudgetError extends RegscanError {
  readonly code = "INVALID_OPTION";
}

/**
 * Defaults for the registries issue 13 names. Each is well under the published limit (which
 * the account, project or address shares with every other client pulling from it), or, where
 * nothing is published, a conservative choice, as each line says.
 */
export const DEFAULT_BUDGETS: Readonly<Record<string, RequestBudget>> = {
  // Docker Hub publishes no request rate for the registry API, only an abuse limit "in the
  // order of thousands of requests per minute" per IPv4 address or IPv6 /64 (docker/docs,
  // content/manuals/docker-hub/usage/_index.md, 2025). 10/s (600/min) stays far below it;
  // pulls have their own budget, read from the `ratelimit-*` headers at run time.
  "registry-1.docker.io": { rps: 10, burst: 20 },
  // GHCR publishes no limit for registry reads (github/docs#24504 asks for one); its 429s
  // have said "allowed: 2000/minute" (chainguard-images/images#173). Conservative: 10/s.
  "ghcr.io": { rps: 10, burst: 20 },
  // ECR: BatchGetImage (manifest reads) 2,000/s and GetDownloadUrlForLayer 3,000/s per account
  // and region, adjustable (docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html).
  // Every node pulling from the account shares them: 50/s is 2.5%.
  "*.dkr.ecr.*.amazonaws.com": { rps: 50, burst: 50 },
  "*.dkr.ecr.*.amazonaws.com.cn": { rps: 50, burst: 50 },
  // Artifact Registry: 60,000 requests per minute per project and region (1,000/s), a Docker
  // pull being several requests (cloud.google.com/artifact-registry/quotas). 50/s is 5%.
  "*-docker.pkg.dev": { rps: 50, burst: 50 },
  "gcr.io": { rps: 50, burst: 50 },
  "*.gcr.io": { rps: 50, burst: 50 },
  // Quay.io: "a few requests per second per IP, with some bursting capabilities", then 429
  // (access.redhat.com/solutions/6218921). No number is published: 3/s, burst 10.
  "quay.io": { rps: 3, burst: 10 },
};

// Docker Hub's names all reach registry-1.docker.io, the API host regscan sends to.
const ALIASES: Readonly<Record<string, string>> = {
  "docker.io": "registry-1.docker.io",
  "index.docker.io": "registry-1.docker.io",
};

const KEY = /^(?:\[[0-9a-f:.]+\]|[a-z0-9*.-]+)(?::\d{1,5})?$/;

interface Entry {
  key: string;
  budget: RequestBudget;
  match: (host: string) => boolean;
}

/** Checks a budget, naming `what` in the error. */
export function checkBudget(budget: RequestBudget, what: string): RequestBudget {
  const { rps, burst } = budget;
  if (!Number.isFinite(rps) || rps <= 0) {
    throw new InvalidBudgetError(`${what}: rps must be a positive number, got ${rps}`);
  }
  if (!Number.isInteger(burst) || burst < 1) {
    throw new InvalidBudgetError(`${what}: burst must be a positive integer, got ${burst}`);
  }
  return { rps, burst };
}

function entries(table: Readonly<Record<string, RequestBudget>>, what: string): Entry[] {
  const out: Entry[] = [];
  for (const [raw, budget] of Object.entries(table)) {
    const lower = raw.trim().toLowerCase();
    if (!KEY.test(lower)) {
      throw new InvalidBudgetError(
        `${what}: ${JSON.stringify(raw)} is not a registry host "host[:port]" or a pattern like "*.gcr.io"`,
      );
    }
    const key = ALIASES[lower] ?? lower;
    const checked = checkBudget(budget, `${what} ${JSON.stringify(raw)}`);
    if (key.includes("*")) {
      const pattern = new RegExp(
        `^${key
          .split("*")
          .map((s) => s.replace(/[.[\]]/g, "\\$&"))
          .join("[^.:]+")}$`,
      );
      out.push({ key, budget: checked, match: (h) => pattern.test(h) });
    } else out.push({ key, budget: checked, match: (h) => h === key });
  }
  // Exact hosts before patterns, so that a host can be told apart from its family.
  return out.sort((a, b) => Number(a.key.includes("*")) - Number(b.key.includes("*")));
}

/** Resolves each host's budget. */
export class RequestBudgets {
  readonly #configured: Entry[];
  readonly #defaults: Entry[];
  readonly #global: RequestBudget;

  constructor(opts: {
    global: RequestBudget;
    configured?: Readonly<Record<string, RequestBudget>> | undefined;
    /** The table of defaults (default `DEFAULT_BUDGETS`; `{}` for none). */
    defaults?: Readonly<Record<string, RequestBudget>> | undefined;
  }) {
    this.#global = opts.global;
    this.#configured = entries(opts.configured ?? {}, "registry budget");
    this.#defaults = entries(opts.defaults ?? DEFAULT_BUDGETS, "default registry budget");
  }

  /**
   * The budget of `host` (`name[:port]`): a configured one as it is; a default one never above
   * the global rate and burst (a user who lowered those meant every host).
   */
  for(host: string): HostBudget {
    const h = host.toLowerCase();
    const configured = this.#configured.find((e) => e.match(h));
    if (configured) return { ...configured.budget, source: "configured", key: configured.key };
    const fallback = this.#defaults.find((e) => e.match(h));
    if (fallback) {
      return {
        rps: Math.min(fallback.budget.rps, this.#global.rps),
        burst: Math.min(fallback.budget.burst, this.#global.burst),
        source: "default",
        key: fallback.key,
      };
    }
    return { ...this.#global, source: "global", key: undefined };
  }
}
