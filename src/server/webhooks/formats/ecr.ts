/**
 * Amazon ECR's EventBridge event `detail-type: "ECR Image Action"`, delivered by an API
 * destination: `{account, region, time, detail: {result, repository-name, image-digest,
 * image-tag, action-type: PUSH | DELETE}}`. The registry host is built from account and region.
 * Format: https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html
 */
import { normalisedEvent } from "../event.js";
import { digestOrNothing, Fields, timeOrNothing } from "../fields.js";
import type { ParsedBody } from "./entries.js";

const NOTHING: ParsedBody = { events: [], rejected: 0 };

/** Parses an ECR Image Action event. */
export function parseEcr(text: string): ParsedBody {
  const f = new Fields("ecr");
  const body = f.object(f.json(text), "");
  if (f.string(body["detail-type"], "detail-type", 128) !== "ECR Image Action") return NOTHING;
  const detail = f.object(body.detail, "detail");
  if (f.string(detail.result, "detail.result", 32) !== "SUCCESS") return NOTHING;
  const type = f.string(detail["action-type"], "detail.action-type", 32);
  if (type !== "PUSH" && type !== "DELETE") return NOTHING;
  const name = f.repository(detail["repository-name"], "detail.repository-name");
  const tag = f.optionalTag(detail["image-tag"], "detail.image-tag");
  const host = ecrHost(body.account, body.region);
  const repository = host ? f.repository(`${host}/${name}`, "detail.repository-name") : name;
  const digest = digestOrNothing(detail["image-digest"]);
  const timestamp = timeOrNothing(body.time);
  return {
    events: [
      normalisedEvent({
        repository,
        action: type === "PUSH" ? "push" : "delete",
        tag,
        digest,
        timestamp,
      }),
    ],
    rejected: 0,
  };
}

/** `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (`.com.cn` in China), when both look right. */
function ecrHost(account: unknown, region: unknown): string | undefined {
  if (typeof account !== "string" || !/^\d{12}$/.test(account)) return undefined;
  if (typeof region !== "string" || !/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/.test(region))
    return undefined;
  return `${account}.dkr.ecr.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`;
}
