/**
 * Artifact Registry (and Container Registry) notifications through a Pub/Sub push
 * subscription: `{message: {data, publishTime, messageId}, subscription}`, `data` being base64
 * JSON `{action: INSERT | DELETE, digest: "HOST/PROJECT/REPO/IMAGE@sha256:...", tag:
 * "HOST/PROJECT/REPO/IMAGE:TAG"}`. A DELETE may carry only a tag or only a digest; an INSERT
 * with only a digest is an upload no tag points at yet.
 * Formats: https://cloud.google.com/artifact-registry/docs/configure-notifications and
 * https://cloud.google.com/pubsub/docs/push (the push request body)
 */

import { normalisedEvent } from "../event.js";
import { Fields, timeOrNothing } from "../fields.js";
import type { ParsedBody } from "./entries.js";

/** Longest base64 `data` read: the notification itself is a few hundred bytes. */
const MAX_DATA = 65_536;

/** Parses a Pub/Sub push request carrying an Artifact Registry notification. */
export function parseGar(text: string): ParsedBody {
  const f = new Fields("gar");
  const body = f.object(f.json(text), "");
  const message = f.object(body.message, "message");
  const data = f.string(message.data, "message.data", MAX_DATA);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 !== 0) {
    f.fail("message.data", "not base64");
  }
  const inner = f.object(f.json(Buffer.from(data, "base64").toString("utf8")), "message.data");
  const action = f.string(inner.action, "message.data.action", 32);
  if (action !== "INSERT" && action !== "DELETE") return { events: [], rejected: 0 };
  const tagged =
    inner.tag === undefined || inner.tag === ""
      ? undefined
      : f.reference(inner.tag, "message.data.tag");
  const digested =
    inner.digest === undefined || inner.digest === ""
      ? undefined
      : f.reference(inner.digest, "message.data.digest");
  if (tagged !== undefined && tagged.tag === undefined) f.fail("message.data.tag", "no tag in it");
  if (digested !== undefined && digested.digest === undefined) {
    f.fail("message.data.digest", "no digest in it");
  }
  const timestamp = timeOrNothing(message.publishTime);
  const source = tagged ?? digested;
  if (source === undefined) return f.fail("message.data", "neither a tag nor a digest");
  if (action === "INSERT" && tagged === undefined) return { events: [], rejected: 0 };
  const event = normalisedEvent({
    repository: source.repository,
    action: action === "INSERT" ? "push" : "delete",
    tag: tagged?.tag,
    digest: digested?.digest,
    timestamp,
  });
  return { events: [event], rejected: 0 };
}
