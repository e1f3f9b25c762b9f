/**
 * This replica's half of the record-write notices (src/server/record-notices.ts): on a Redis
 * store, every scan that may have written its repository's record is announced on the
 * channel every replica's API listens to. Other stores have no notices (their APIs read a
 * repository's state each second).
 */
import type { Logger } from "pino";
import { Keys } from "../cache/keys.js";
import { isRedisStore } from "../cache/open-store.js";
import type { Store } from "../cache/store.js";
import type { Warmer } from "../cache/warmer.js";
import { publishRecordNotice, recordNoticeChannel } from "../server/record-notices.js";

/** Announces this warmer's record writes until the returned function is called. */
export function publishRecordWrites(store: Store, warmer: Warmer, logger: Logger): () => void {
  if (!isRedisStore(store)) return () => {};
  const connection = store.duplicateConnection(5_000);
  // Failures are logged per notice (publishRecordNotice).
  connection.on("error", () => {});
  const channel = recordNoticeChannel(new Keys().prefix);
  const stop = warmer.onScan((result) => {
    // Skipped scans write nothing; a failed or stopped one may have written the record.
    if (result.outcome === "skipped-lease" || result.outcome === "skipped-fresh") return;
    void publishRecordNotice(connection, channel, result.repository, logger);
  });
  return () => {
    stop();
    connection.disconnect();
  };
}
