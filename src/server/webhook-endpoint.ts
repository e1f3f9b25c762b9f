/**
 * `POST /v1/webhooks/{kind}` and `/v1/webhooks/{kind}/{secret}` on the API server: reads
 * the body (at most 1 MiB), lets the receivers authenticate and parse it, answers at once
 * and hands the events to the refresher. The path secret is never logged nor counted.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { Counter, type Registry as MetricsRegistry } from "prom-client";
import { isWebhookKind, type NormalisedEvent, type WebhookKind } from "./webhooks/event.js";
import {
  readWebhookBody,
  type WebhookReceivers,
  type WebhookResult,
} from "./webhooks/receivers.js";

/** What became of the events of one accepted request. */
export interface WebhookDelivery {
  /** Events naming a watched repository: a refresh was asked for. */
  refreshed: number;
  /** Events naming repositories not watched: ignored. */
  unwatched: number;
}

/** Where accepted events go (the daemon's refresher, or its proxy on the API thread). */
export interface WebhookSink {
  deliver(
    kind: WebhookKind,
    events: readonly NormalisedEvent[],
  ): WebhookDelivery | Promise<WebhookDelivery>;
}

/** `regscan_webhooks_total{result}` values: the receivers' results, and `unwatched`. */
export type WebhookMetricResult = WebhookResult | "unwatched" | "aborted";

/** What {@link WebhookEndpoint} answers with. */
export interface WebhookEndpointOptions {
  /** Authenticate and parse the requests. */
  receivers: WebhookReceivers;
  /** Where accepted events go. */
  sink: WebhookSink;
  /** Where `regscan_webhooks_total` is registered. */
  metrics: MetricsRegistry;
  logger: Logger;
}

/** The webhook routes of the API server. */
export class WebhookEndpoint {
  readonly #counter: Counter<"kind" | "result">;
  readonly #receivers: WebhookReceivers;
  readonly #sink: WebhookSink;
  readonly #logger: Logger;

  constructor(opts: WebhookEndpointOptions) {
    const { receivers, metrics } = opts;
    this.#receivers = receivers;
    this.#sink = opts.sink;
    this.#logger = opts.logger;
    this.#counter =
      (metrics.getSingleMetric("regscan_webhooks_total") as
        | Counter<"kind" | "result">
        | undefined) ??
      new Counter({
        name: "regscan_webhooks_total",
        help: "webhook requests by receiver kind and result",
        labelNames: ["kind", "result"],
        registers: [metrics],
      });
    // Every configured kind shows from the start, so that rate() works on the first event.
    for (const kind of receivers.kinds()) this.#counter.inc({ kind, result: "accepted" }, 0);
  }

  /** Answers one request; `rest` is the still percent-encoded path after `/v1/webhooks/`. */
  async handle(req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    const slash = rest.indexOf("/");
    const kind = slash < 0 ? rest : rest.slice(0, slash);
    const label = isWebhookKind(kind) ? kind : "unknown";
    let pathSecret: string | undefined;
    if (slash >= 0) {
      try {
        pathSecret = decodeURIComponent(rest.slice(slash + 1));
      } catch {
        pathSecret = "";
      }
    }
    let rawBody: Buffer;
    try {
      rawBody = await readWebhookBody(req);
    } catch {
      // The sender went away mid-body: nobody to answer.
      this.#counter.inc({ kind: label, result: "aborted" });
      res.destroy();
      return;
    }
    const answer = await this.#receivers.handle({
      kind,
      headers: req.headers,
      rawBody,
      pathSecret,
      remoteAddress: req.socket.remoteAddress ?? "unknown",
      signal: AbortSignal.timeout(10_000),
    });
    let result: WebhookMetricResult = answer.result;
    const headers: Record<string, string> = {};
    let body: Record<string, unknown>;
    if (answer.status === 202) {
      const delivery =
        answer.events.length > 0
          ? await this.#sink.deliver(label as WebhookKind, answer.events)
          : undefined;
      if (delivery && delivery.refreshed === 0 && delivery.unwatched > 0) result = "unwatched";
      body = {
        status: "accepted",
        events: answer.events.length,
        refreshed: delivery?.refreshed ?? 0,
        unwatched: delivery?.unwatched ?? 0,
        rejected: answer.rejected,
      };
      // A registry notifies every pull too, regscan's own included: a delivery with nothing
      // to refresh would otherwise be an info line per request regscan makes.
      this.#logger[answer.events.length > 0 ? "info" : "debug"](
        { kind: label, result, events: answer.events.length, ...delivery },
        "webhook received",
      );
    } else {
      body = { code: answer.code, message: answer.message };
      if (answer.status === 413) headers.connection = "close";
      if (answer.retryAfterSeconds !== undefined) {
        headers["retry-after"] = String(answer.retryAfterSeconds);
      }
      // No path, no header, no body: any of them may carry the secret that failed.
      this.#logger.info(
        { kind: label, result, status: answer.status, client: req.socket.remoteAddress },
        "webhook refused",
      );
    }
    this.#counter.inc({ kind: label, result });
    const text = Buffer.from(`${JSON.stringify(body)}\n`, "utf8");
    res.writeHead(answer.status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": text.length,
      "cache-control": "no-store",
      ...headers,
    });
    res.end(text);
  }
}
