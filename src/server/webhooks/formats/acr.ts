/**
 * Azure Container Registry's webhook: one event per request, `{id, timestamp, action:
 * push | delete | chart_push | ..., target: {mediaType, digest, repository, tag}, request:
 * {host}}` (the same fields as a distribution event). A distribution envelope is read too.
 * Format: https://learn.microsoft.com/azure/container-registry/container-registry-webhook-reference
 */
import { Fields } from "../fields.js";
import { distributionEvent, parseDistribution } from "./distribution.js";
import type { ParsedBody } from "./entries.js";

/** Parses an ACR webhook body. */
export function parseAcr(text: string): ParsedBody {
  const f = new Fields("acr");
  const body = f.object(f.json(text), "");
  if (body.events !== undefined) return parseDistribution(text, "acr");
  const event = distributionEvent(f, { event: body, at: "" });
  return { events: event ? [event] : [], rejected: 0 };
}
