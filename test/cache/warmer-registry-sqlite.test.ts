/**
 * Acceptance 1 on the embedded sqlite store, the 5,000-tag repository included in every
 * step (see support/registry-acceptance.ts).
 */
import { join } from "node:path";
import { describeWarmerAcceptance } from "./support/registry-acceptance.js";

describeWarmerAcceptance(
  [{ name: "sqlite", url: (dir) => `sqlite:${join(dir, "cache.db")}` }],
  true,
);
