/**
 * regscan's own minimal format, for senders with no format of their own (Nexus or
 * Artifactory scripts, CI jobs): `{"repository": "HOST/PATH", "tag": "TAG"}` or a list of
 * them; `tag` may be left out to refresh the repository's listing.
 */
import { normalisedEvent } from "../event.js";
import { Fields } from "../fields.js";
import { collect, type ParsedBody } from "./entries.js";

/** Parses a generic webhook body. */
export function parseGeneric(text: string): ParsedBody {
  const f = new Fields("generic");
  const body = f.json(text);
  const entries = Array.isArray(body) ? f.array(body, "") : [f.object(body, "")];
  return collect(entries, (entry, i) => {
    const at = Array.isArray(body) ? `[${i}]` : "";
    const item = f.object(entry, at);
    const repository = f.repository(item.repository, `${at}${at ? "." : ""}repository`);
    const tag = f.optionalTag(item.tag, `${at}${at ? "." : ""}tag`);
    return [normalisedEvent({ repository, action: "push", tag })];
  });
}
