/**
 * CNCF distribution notifications (Docker registry 2.x, distribution 3, GitLab's registry,
 * ACR): an envelope `{"events": [...]}` of `{action, timestamp, target: {mediaType, digest,
 * repository, tag}, request: {host}}`. Blob pushes and pulls are not changes to a tag.
 * Format: https://distribution.github.io/distribution/about/notifications/
 */

import { type NormalisedEvent, normalisedEvent } from "../event.js";
import { digestOrNothing, Fields, type JsonObject, timeOrNothing } from "../fields.js";
import { collect, type ParsedBody } from "./entries.js";

/** The envelope's media types (v1 from distribution 2.x, v2 from distribution 3). */
export const DISTRIBUTION_MEDIA_TYPES = [
  "application/vnd.docker.distribution.events.v1+json",
  "application/vnd.docker.distribution.events.v2+json",
];

const MANIFEST_MEDIA_TYPES = new Set([
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
]);

/** Parses a notification envelope. */
export function parseDistribution(text: string, kind = "distribution"): ParsedBody {
  const f = new Fields(kind);
  const body = f.object(f.json(text), "");
  const events = f.array(body.events, "events");
  return collect(events, (entry, i) => {
    const event = distributionEvent(f, {
      event: f.object(entry, `events[${i}]`),
      at: `events[${i}]`,
    });
    return event ? [event] : [];
  });
}

/**
 * One event of the envelope (also the whole body of an ACR webhook); undefined when it is
 * not a manifest push or a delete.
 */
export function distributionEvent(
  f: Fields,
  {
    event,
    at,
    actions = { push: "push", delete: "delete" },
  }: {
    event: JsonObject;
    /** Where the event is in the body (`events[2]`; empty for a body that is the event). */
    at: string;
    /** The action names of a push and a delete (default `push` and `delete`). */
    actions?: { push: string; delete: string };
  },
): NormalisedEvent | undefined {
  const p = (field: string) => (at ? `${at}.${field}` : field);
  const action = f.string(event.action, p("action"), 64);
  if (action !== actions.push && action !== actions.delete) return undefined;
  const target = f.object(event.target, p("target"));
  const type = f.optionalString(target.mediaType, p("target.mediaType"), 256);
  // A delete's target carries no media type; a push of anything but a manifest is a blob.
  if (action === actions.push && (type === undefined || !isManifest(type))) return undefined;
  const path = f.repository(target.repository, p("target.repository"));
  const tag = f.optionalTag(target.tag, p("target.tag"));
  const request = f.optionalObject(event.request, p("request"));
  const host = request ? f.optionalString(request.host, p("request.host"), 256) : undefined;
  const digest = digestOrNothing(target.digest);
  const timestamp = timeOrNothing(event.timestamp);
  return normalisedEvent({
    repository: withHost(f, host, path),
    action: action === actions.push ? "push" : "delete",
    tag,
    digest,
    timestamp,
  });
}

function isManifest(type: string): boolean {
  return MANIFEST_MEDIA_TYPES.has(type);
}

/** `host/path` when the host is a registry host the parser accepts, else the path alone. */
function withHost(f: Fields, host: string | undefined, path: string): string {
  // A bare word would be read as a Docker Hub namespace, not a host: keep the path alone.
  if (host === undefined || !(host.includes(".") || host.includes(":") || host === "localhost")) {
    return path;
  }
  try {
    return f.repository(`${host}/${path}`, "request.host");
  } catch {
    // A Host header regscan cannot use as a domain (e.g. with a path) names no repository.
    return path;
  }
}
