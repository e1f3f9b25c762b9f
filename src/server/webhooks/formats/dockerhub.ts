/**
 * Docker Hub's repository webhook: `{push_data: {pushed_at, pusher, tag}, repository:
 * {repo_name, ...}, callback_url}`. Only pushes are sent; there is no digest and no signature.
 * Format: https://docs.docker.com/docker-hub/repos/manage/webhooks/
 */
import { normalisedEvent } from "../event.js";
import { Fields, timeOrNothing } from "../fields.js";
import type { ParsedBody } from "./entries.js";

/** Parses a Docker Hub webhook body. */
export function parseDockerHub(text: string): ParsedBody {
  const f = new Fields("dockerhub");
  const body = f.object(f.json(text), "");
  const push = f.object(body.push_data, "push_data");
  const repo = f.object(body.repository, "repository");
  const repository = f.repository(repo.repo_name, "repository.repo_name");
  const tag = f.optionalTag(push.tag, "push_data.tag");
  const timestamp = timeOrNothing(push.pushed_at);
  return {
    events: [normalisedEvent({ repository, action: "push", tag, timestamp })],
    rejected: 0,
  };
}
