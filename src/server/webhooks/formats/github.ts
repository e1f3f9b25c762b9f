/**
 * GitHub's `package` and `registry_package` webhook events for container packages (GHCR):
 * `action: published`, the tag at `package.package_version.container_metadata.tag.name`,
 * the image at `package_version.package_url` (`ghcr.io/OWNER/NAME:TAG`). Other events
 * (`ping`, other package types, untagged versions) are not changes to a tag.
 * Format: https://docs.github.com/en/webhooks/webhook-events-and-payloads#package
 */

import { normalisedEvent } from "../event.js";
import { digestOrNothing, Fields, type JsonObject, timeOrNothing } from "../fields.js";
import { headerValue, type WebhookHeaders } from "../headers.js";
import type { ParsedBody } from "./entries.js";

const NOTHING: ParsedBody = { events: [], rejected: 0 };

/** Parses a GitHub webhook body; `X-GitHub-Event` says which event it is. */
export function parseGitHub(text: string, headers: WebhookHeaders): ParsedBody {
  const f = new Fields("github");
  const body = f.object(f.json(text), "");
  const event = headerValue(headers, "x-github-event");
  const key =
    event === "package" ? "package" : event === "registry_package" ? "registry_package" : undefined;
  if (key === undefined) return NOTHING;
  const action = f.string(body.action, "action", 64);
  if (action !== "published" && action !== "updated") return NOTHING;
  const pkg = f.object(body[key], key);
  const type = f.string(pkg.package_type, `${key}.package_type`, 64).toLowerCase();
  if (type !== "container" && type !== "docker") return NOTHING;
  const version = f.object(pkg.package_version, `${key}.package_version`);
  const at = `${key}.package_version`;
  const meta = f.optionalObject(version.container_metadata, `${at}.container_metadata`);
  const tagInfo = meta ? f.optionalObject(meta.tag, `${at}.container_metadata.tag`) : undefined;
  const metaTag = tagInfo
    ? f.optionalTag(tagInfo.name, `${at}.container_metadata.tag.name`)
    : undefined;
  const image = imageOf(f, { pkg, version, key });
  const tag = metaTag ?? image.tag;
  // An untagged version is one platform's manifest of a multi-platform push: no tag moved.
  if (tag === undefined) return NOTHING;
  const repository = image.repository;
  const digest = digestOrNothing(tagInfo?.digest) ?? digestOrNothing(version.version);
  const timestamp = timeOrNothing(version.updated_at) ?? timeOrNothing(version.created_at);
  return {
    events: [normalisedEvent({ repository, tag, action: "push", digest, timestamp })],
    rejected: 0,
  };
}

/**
 * The image `package_url` names (`ghcr.io/OWNER/NAME[:TAG]`), else `ghcr.io/NAMESPACE/NAME`
 * (GHCR names are lower case).
 */
function imageOf(
  f: Fields,
  { pkg, version, key }: { pkg: JsonObject; version: JsonObject; key: string },
): { repository: string; tag?: string } {
  const url = f.optionalString(version.package_url, `${key}.package_version.package_url`, 1024);
  if (url !== undefined) return f.reference(url, `${key}.package_version.package_url`);
  const namespace = f.string(pkg.namespace, `${key}.namespace`, 256).toLowerCase();
  const name = f.string(pkg.name, `${key}.name`, 256).toLowerCase();
  return { repository: f.repository(`ghcr.io/${namespace}/${name}`, `${key}.name`) };
}
