/**
 * Quay's "Repository Push" notification: `{repository, namespace, name, docker_url,
 * updated_tags}`, where `updated_tags` is a list of tags, or in older payloads an object from
 * tag to image ID. `docker_url` carries the host. No signature.
 * Format: https://docs.redhat.com/en/documentation/red_hat_quay/3.4/html/use_red_hat_quay/repository_notifications
 * (older map form: https://gist.github.com/jakedt/7533338, Quay's own example)
 */
import { Fields } from "../fields.js";
import { collect, type ParsedBody } from "./entries.js";

/** Parses a Quay repository-push notification. */
export function parseQuay(text: string): ParsedBody {
  const f = new Fields("quay");
  const body = f.object(f.json(text), "");
  const repository =
    body.docker_url !== undefined
      ? f.repository(body.docker_url, "docker_url")
      : f.repository(body.repository, "repository");
  const updated = body.updated_tags;
  let tags: readonly unknown[];
  if (Array.isArray(updated)) tags = f.array(updated, "updated_tags");
  else tags = f.array(Object.keys(f.object(updated, "updated_tags")), "updated_tags");
  // Other notifications (builds, scans) carry no updated tags: nothing was pushed.
  return collect(tags, (entry, i) => [
    { repository, action: "push", tag: f.tag(entry, `updated_tags[${i}]`) },
  ]);
}
