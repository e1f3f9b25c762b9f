/**
 * Harbor's webhook ("Default" payload format): `{type: PUSH_ARTIFACT | DELETE_ARTIFACT,
 * occur_at, event_data: {resources: [{digest, tag, resource_url}], repository:
 * {repo_full_name}}}`. `resource_url` gives Harbor's host; the CloudEvents format is not read.
 * Format: https://goharbor.io/docs/latest/working-with-projects/project-configuration/configure-webhooks/
 */
import { normalisedEvent } from "../event.js";
import { digestOrNothing, Fields, timeOrNothing } from "../fields.js";
import { collect, type ParsedBody } from "./entries.js";

const ACTIONS: Readonly<Record<string, "push" | "delete">> = {
  PUSH_ARTIFACT: "push",
  DELETE_ARTIFACT: "delete",
};

/** Parses a Harbor webhook body. */
export function parseHarbor(text: string): ParsedBody {
  const f = new Fields("harbor");
  const body = f.object(f.json(text), "");
  const type = f.string(body.type, "type", 64);
  const action = Object.hasOwn(ACTIONS, type) ? ACTIONS[type] : undefined;
  if (action === undefined) return { events: [], rejected: 0 };
  const data = f.object(body.event_data, "event_data");
  const repo = f.object(data.repository, "event_data.repository");
  const fullName = f.repository(repo.repo_full_name, "event_data.repository.repo_full_name");
  const timestamp = timeOrNothing(body.occur_at);
  const resources = f.array(data.resources, "event_data.resources");
  return collect(resources, (entry, i) => {
    const at = `event_data.resources[${i}]`;
    const resource = f.object(entry, at);
    const tag = f.optionalTag(resource.tag, `${at}.tag`);
    const url = f.optionalString(resource.resource_url, `${at}.resource_url`, 1024);
    // The URL names Harbor's own host; use it only when it is the same repository.
    let repository = fullName;
    if (url !== undefined) {
      const ref = f.reference(url, `${at}.resource_url`);
      if (ref.repository.endsWith(`/${fullName}`)) repository = ref.repository;
    }
    const digest = digestOrNothing(resource.digest);
    return [normalisedEvent({ repository, action, tag, digest, timestamp })];
  });
}
