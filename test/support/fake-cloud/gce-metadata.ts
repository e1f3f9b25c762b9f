/**
 * A local GCE metadata server (reached through `GCE_METADATA_HOST`): answers the residency
 * ping and the default service account's token, with `Metadata-Flavor: Google`.
 */
import { type FakeServer, startFakeServer } from "./http-server.js";

export interface FakeGceMetadata extends FakeServer {
  /** How many tokens were handed out. */
  tokenRequests: number;
  /** The `expires_in` of the next tokens, in seconds. */
  expiresIn: number;
  /** The token handed out the n-th time (1-based). */
  tokenFor: (n: number) => string;
}

export async function startFakeGceMetadata(): Promise<FakeGceMetadata> {
  const state = {
    tokenRequests: 0,
    expiresIn: 3600,
    tokenFor: (n: number) => `ya29.fake-gce-token-${n}-${"q".repeat(12)}`,
  };
  const server = await startFakeServer((req, _body, res) => {
    if (req.headers["metadata-flavor"] !== "Google") {
      res.writeHead(403);
      res.end("missing Metadata-Flavor");
      return;
    }
    const path = (req.url ?? "").split("?")[0];
    if (path === "/computeMetadata/v1/instance" || path === "/computeMetadata/v1/instance/") {
      res.writeHead(200, { "Metadata-Flavor": "Google", "content-type": "application/text" });
      res.end("attributes/\nservice-accounts/\n");
      return;
    }
    if (path === "/computeMetadata/v1/instance/service-accounts/default/token") {
      state.tokenRequests++;
      res.writeHead(200, { "Metadata-Flavor": "Google", "content-type": "application/json" });
      res.end(
        JSON.stringify({
          access_token: state.tokenFor(state.tokenRequests),
          expires_in: state.expiresIn,
          token_type: "Bearer",
        }),
      );
      return;
    }
    res.writeHead(404, { "Metadata-Flavor": "Google" });
    res.end("not found");
  });
  return Object.assign(state, server);
}
