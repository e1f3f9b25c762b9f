/**
 * How each simulated registry lists tags and counts pulls: what real registries do (or did)
 * that has broken clients, each with where it comes from. A personality is plain data; the
 * registry server reads it.
 */
import type { TagOrder } from "./content.js";

export type PersonalityName =
  | "distribution2"
  | "distribution3"
  | "ghcr"
  | "quay"
  | "ecr"
  | "acr"
  | "artifactory"
  | "nexus"
  | "harbor110"
  | "dockerhub";

export interface Personality {
  name: PersonalityName;
  /** `none`: every tag in one answer whatever `n` says. */
  pagination: "none" | "link";
  /** Page size when the request has no `n`. */
  defaultPageSize: number;
  /** What a larger `n` than `maxPageSize` gets: capped silently, or an error. */
  maxPageSize?: number;
  oversize?: "cap" | { status: number; code: string; message: string };
  order: TagOrder;
  /** The cursor of the next link: `last=<tag>` or an opaque `next_page` token (Quay). */
  cursor: "last" | "next_page";
  /**
   * How the `next` link is written: relative path; absolute URL; absolute URL without the
   * port (Nexus); relative path without the first name segment (Artifactory).
   */
  link: "relative" | "absolute" | "absolute-no-port" | "drop-prefix";
  /** Docker Hub's pull quota on manifest GETs. */
  pullQuota?: { limit: number; windowSeconds: number };
}

/**
 * distribution 2.x, as issue 13 specifies it: one answer holds every tag. (The harness's
 * real distribution 2.8 registry, test/support/registry.ts, covers its own `n`/`last`.)
 */
const distribution2: Personality = {
  name: "distribution2",
  pagination: "none",
  defaultPageSize: Number.POSITIVE_INFINITY,
  order: "lexical",
  cursor: "last",
  link: "relative",
};

/**
 * distribution 3 (CNCF distribution v3.0): `n` defaults to 100 and a relative
 * `Link: </v2/NAME/tags/list?last=..&n=..>; rel="next"` points on; lexical order (OCI
 * distribution-spec "tags MUST be in lexical order", opencontainers/distribution-spec#470).
 */
const distribution3: Personality = {
  name: "distribution3",
  pagination: "link",
  defaultPageSize: 100,
  order: "lexical",
  cursor: "last",
  link: "relative",
};

/**
 * GHCR: 100 tags without `n`, a relative next link, and tags oldest first rather than
 * lexical (renovatebot/renovate#36103: "GHCR.io sorts from oldest to newest when returning
 * tags, so we have no choice but to fetch all pages").
 */
const ghcr: Personality = { ...distribution3, name: "ghcr", order: "oldest-first" };

/**
 * Quay: pages of at most 100 (quay/quay endpoints/v2/__init__.py `_MAX_RESULTS_PER_PAGE`),
 * an opaque `next_page` token in an absolute next link, tags in creation (id) order. A
 * larger `n` answers `TOO_MANY_TAGS_REQUESTED`, as issue 13 reports; quay's errors.py gives
 * that error HTTP 413 (current quay caps instead; `oversize: "cap"` simulates that).
 */
const quay: Personality = {
  name: "quay",
  pagination: "link",
  defaultPageSize: 100,
  maxPageSize: 100,
  oversize: { status: 413, code: "TOO_MANY_TAGS_REQUESTED", message: "too many tags requested" },
  order: "oldest-first",
  cursor: "next_page",
  link: "absolute",
};

/**
 * ECR: `n` above 1,000 answers 405 (issue 13, from clients that asked for more; ECR's own
 * APIs cap `maxResults` at 1,000). 100 without `n` is assumed.
 */
const ecr: Personality = {
  name: "ecr",
  pagination: "link",
  defaultPageSize: 100,
  maxPageSize: 1000,
  oversize: { status: 405, code: "UNSUPPORTED", message: "n must be at most 1000" },
  order: "lexical",
  cursor: "last",
  link: "relative",
};

/** ACR: an `n` above 1,000 is treated as 1,000 without a word (issue 13). */
const acr: Personality = {
  name: "acr",
  pagination: "link",
  defaultPageSize: 100,
  maxPageSize: 1000,
  oversize: "cap",
  order: "lexical",
  cursor: "last",
  link: "relative",
};

/**
 * Artifactory: the next link leaves out the virtual repository, e.g. a request for
 * `/v2/docker/renovate/renovate/tags/list?n=10000` answers
 * `Link: </v2/renovate/renovate/tags/list?last=10000&n=10000>` (renovatebot/renovate#15030,
 * #15080, Artifactory 7.46.11). Repositories of this personality are named `virtual/...`.
 */
const artifactory: Personality = {
  name: "artifactory",
  pagination: "link",
  defaultPageSize: 100,
  order: "lexical",
  cursor: "last",
  link: "drop-prefix",
};

/**
 * Nexus: the next link is an absolute URL without the connector's port (issue 13; Nexus's
 * Docker connector links are also wrong in other ways, sonatype/nexus-public#1011).
 */
const nexus: Personality = {
  name: "nexus",
  pagination: "link",
  defaultPageSize: 100,
  order: "lexical",
  cursor: "last",
  link: "absolute-no-port",
};

/** Harbor 1.10: no pagination of tags/list (issue 13; Harbor 2.0 added it, goharbor/harbor#11318). */
const harbor110: Personality = { ...distribution2, name: "harbor110" };

/**
 * Docker Hub: 100 tags a page with a relative next link; `ratelimit-limit: 100;w=21600` and
 * `ratelimit-remaining: N;w=21600` on manifest requests; a `HEAD` does not count; every
 * manifest GET of an image counts, so a multi-platform pull counts once per platform
 * manifest fetched; past the limit a GET answers 429 `TOOMANYREQUESTS`
 * (docs.docker.com/docker-hub/usage/pulls and /download-rate-limit).
 */
const dockerhub: Personality = {
  name: "dockerhub",
  pagination: "link",
  defaultPageSize: 100,
  order: "lexical",
  cursor: "last",
  link: "relative",
  pullQuota: { limit: 100, windowSeconds: 21_600 },
};

export const PERSONALITIES: Readonly<Record<PersonalityName, Personality>> = {
  distribution2,
  distribution3,
  ghcr,
  quay,
  ecr,
  acr,
  artifactory,
  nexus,
  harbor110,
  dockerhub,
};

export const PERSONALITY_NAMES = Object.keys(PERSONALITIES) as PersonalityName[];
