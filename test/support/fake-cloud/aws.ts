/**
 * A local stand-in for the AWS endpoints ECR credentials use: the ECR API's
 * `GetAuthorizationToken` (JSON 1.1 protocol, reached through `AWS_ENDPOINT_URL_ECR` or the
 * `endpoint` option) and the EC2 instance metadata service's region (IMDSv2).
 */
import { type FakeServer, sendJson, startFakeServer } from "./http-server.js";

export interface EcrCall {
  region: string;
  registryIds: string[];
}

export interface FakeAws extends FakeServer {
  /** Every `GetAuthorizationToken` the server answered or refused, in order. */
  calls: EcrCall[];
  /** Makes the next calls fail (HTTP 400, `InvalidParameterException`) until set back. */
  failing: boolean;
  /** The `expiresAt` (ms since the epoch) to answer for a registry; default now + 12 h. */
  expiresAt: (accountId: string, region: string) => number;
  /** The password handed out for a registry (what `base64("AWS:" + password)` carries). */
  passwordFor: (accountId: string, region: string) => string;
  /** The region IMDS reports. */
  imdsRegion: string;
  imdsRequests: number;
}

const TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";

/** Starts the fake AWS endpoints on a free loopback port. */
export async function startFakeAws(): Promise<FakeAws> {
  const state = {
    calls: [] as EcrCall[],
    failing: false,
    expiresAt: (_a: string, _r: string) => Date.now() + 12 * 3600 * 1000,
    passwordFor: (a: string, r: string) => `ecr-pw-${a}-${r}-${"x".repeat(8)}`,
    imdsRegion: "eu-west-1",
    imdsRequests: 0,
  };
  const server = await startFakeServer((req, body, res) => {
    if (req.url === "/latest/api/token" && req.method === "PUT") {
      state.imdsRequests++;
      res.end("fake-imds-token");
      return;
    }
    if (req.url === "/latest/meta-data/placement/region") {
      state.imdsRequests++;
      if (req.headers["x-aws-ec2-metadata-token"] !== "fake-imds-token") {
        res.statusCode = 401;
        res.end();
        return;
      }
      res.end(state.imdsRegion);
      return;
    }
    if (req.method !== "POST" || req.headers["x-amz-target"] !== TARGET) {
      sendJson(res, {
        status: 400,
        body: { __type: "UnknownOperationException" },
        contentType: "application/x-amz-json-1.1",
      });
      return;
    }
    // The region is in the SigV4 credential scope: Credential=AKID/DATE/REGION/ecr/aws4_request
    const scope = /Credential=[^/]+\/\d+\/([^/]+)\/ecr\/aws4_request/.exec(
      String(req.headers.authorization ?? ""),
    );
    const region = scope?.[1] ?? "unsigned";
    const input = JSON.parse(body || "{}") as { registryIds?: string[] };
    const registryIds = input.registryIds ?? [];
    state.calls.push({ region, registryIds });
    if (state.failing) {
      sendJson(res, {
        status: 400,
        body: { __type: "InvalidParameterException", message: "fake failure" },
        contentType: "application/x-amz-json-1.1",
      });
      return;
    }
    const suffix = region.startsWith("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
    sendJson(res, {
      status: 200,
      body: {
        authorizationData: registryIds.map((id) => ({
          authorizationToken: Buffer.from(`AWS:${state.passwordFor(id, region)}`).toString(
            "base64",
          ),
          expiresAt: state.expiresAt(id, region) / 1000,
          proxyEndpoint: `https://${id}.dkr.ecr.${region}.${suffix}`,
        })),
      },
      contentType: "application/x-amz-json-1.1",
    });
  });
  return Object.assign(state, server);
}
