import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidWebhookBodyError } from "../../../src/server/webhooks/errors.js";
import { parseAcr } from "../../../src/server/webhooks/formats/acr.js";
import { parseDistribution } from "../../../src/server/webhooks/formats/distribution.js";
import { parseDockerHub } from "../../../src/server/webhooks/formats/dockerhub.js";
import { parseEcr } from "../../../src/server/webhooks/formats/ecr.js";
import { parseGar } from "../../../src/server/webhooks/formats/gar.js";
import { parseGeneric } from "../../../src/server/webhooks/formats/generic.js";
import { parseGitHub } from "../../../src/server/webhooks/formats/github.js";
import { parseHarbor } from "../../../src/server/webhooks/formats/harbor.js";
import { parseQuay } from "../../../src/server/webhooks/formats/quay.js";
import * as samples from "./samples.js";

const json = (v: unknown) => JSON.stringify(v);

function refused(fn: () => unknown, field: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidWebhookBodyError, String(err));
    assert.equal(err.code, "INVALID_WEBHOOK_BODY");
    assert.match(err.message, field);
    return true;
  });
}

describe("distribution notifications", () => {
  test("a manifest push names host, repository, tag, digest and time", () => {
    assert.deepEqual(parseDistribution(json(samples.distributionPush)), {
      events: [
        {
          repository: "192.168.100.227:5000/hello-world",
          tag: "latest",
          digest: "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
          action: "push",
          timestamp: new Date("2016-03-09T22:44:26.402Z"),
        },
      ],
      rejected: 0,
    });
  });

  test("pulls and blob pushes are not changes", () => {
    assert.deepEqual(parseDistribution(json(samples.distributionPull)).events, []);
    assert.deepEqual(parseDistribution(json(samples.distributionBlobPush)).events, []);
  });

  test("a delete (no media type) and a tag-less push of an index", () => {
    const base = samples.distributionPush.events[0];
    const body = {
      events: [
        {
          ...base,
          action: "delete",
          target: { repository: "hello-world", digest: base?.target.digest },
        },
        {
          ...base,
          target: {
            ...base?.target,
            tag: undefined,
            mediaType: "application/vnd.oci.image.index.v1+json",
          },
        },
      ],
    };
    const events = parseDistribution(json(body)).events;
    assert.deepEqual(
      events.map((e) => [e.action, e.repository, e.tag]),
      [
        ["delete", "192.168.100.227:5000/hello-world", undefined],
        ["push", "192.168.100.227:5000/hello-world", undefined],
      ],
    );
  });

  test("a host that is no domain is left out rather than misread as a namespace", () => {
    const base = samples.distributionPush.events[0];
    const body = { events: [{ ...base, request: { host: "registry" } }] };
    assert.equal(parseDistribution(json(body)).events[0]?.repository, "hello-world");
  });

  test("an invalid event among valid ones is skipped and counted", () => {
    const good = samples.distributionPush.events[0];
    const bad = { ...good, target: { ...good?.target, tag: "-bad" } };
    const parsed = parseDistribution(json({ events: [bad, good] }));
    assert.equal(parsed.events.length, 1);
    assert.equal(parsed.rejected, 1);
    refused(
      () => parseDistribution(json({ events: [bad] })),
      /events\[0\]\.target\.tag: invalid tag "-bad"/,
    );
  });

  test("not an envelope", () => {
    refused(() => parseDistribution("[]"), /expected an object/);
    refused(() => parseDistribution(json({ events: {} })), /at events: expected a list/);
    refused(() => parseDistribution('{"events": ['), /not valid JSON/);
    refused(
      () => parseDistribution(json({ events: Array.from({ length: 1001 }, () => ({})) })),
      /more than 1000/,
    );
  });

  test("upper case, bad digests and absurd times are refused or dropped", () => {
    const base = samples.distributionPush.events[0];
    refused(
      () =>
        parseDistribution(
          json({ events: [{ ...base, target: { ...base?.target, repository: "Hello" } }] }),
        ),
      /must be lowercase/,
    );
    const odd = {
      ...base,
      timestamp: "1970-01-01T00:00:00Z",
      target: { ...base?.target, digest: "sha256:abc" },
    };
    const [event] = parseDistribution(json({ events: [odd] })).events;
    assert.equal(event?.digest, undefined);
    assert.equal(event?.timestamp, undefined);
  });
});

describe("Harbor", () => {
  test("PUSH_ARTIFACT names Harbor's host from resource_url", () => {
    assert.deepEqual(parseHarbor(json(samples.harborPush)).events, [
      {
        repository: "hub.harbor.com/test-webhook/debian",
        tag: "latest",
        digest: "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8",
        action: "push",
        timestamp: new Date(1586922308 * 1000),
      },
    ]);
  });

  test("a resource_url for another repository is not believed", () => {
    const body = structuredClone(samples.harborPush);
    const resource = body.event_data.resources[0];
    if (resource) resource.resource_url = "evil.example.com/other/thing:latest";
    assert.equal(parseHarbor(json(body)).events[0]?.repository, "test-webhook/debian");
  });

  test("other event types are ignored; a bad tag is refused", () => {
    assert.deepEqual(
      parseHarbor(json({ ...samples.harborPush, type: "PULL_ARTIFACT" })).events,
      [],
    );
    const body = structuredClone(samples.harborPush);
    const resource = body.event_data.resources[0];
    if (resource) resource.tag = "a:b";
    refused(() => parseHarbor(json(body)), /event_data\.resources\[0\]\.tag/);
  });
});

describe("Docker Hub", () => {
  test("the documented payload", () => {
    assert.deepEqual(parseDockerHub(json(samples.dockerHubPush)).events, [
      {
        repository: "svendowideit/testhook",
        tag: "latest",
        action: "push",
        timestamp: new Date(1417566161 * 1000),
      },
    ]);
  });

  test("no repo_name", () => {
    refused(
      () => parseDockerHub(json({ push_data: { tag: "x" }, repository: {} })),
      /repository\.repo_name/,
    );
  });
});

describe("GitHub", () => {
  const headers = { "x-github-event": "package" };
  test("package published: image from package_url, tag from container_metadata", () => {
    assert.deepEqual(parseGitHub(json(samples.githubPackagePublished), headers).events, [
      {
        repository: "ghcr.io/octo-org/app",
        tag: "v1.4.2",
        digest: "sha256:ceebe538c5f4c3b32dba99b9c3b1d7401d6815db8d7240e8854c87b570a991e9",
        action: "push",
        timestamp: new Date("2024-05-01T10:00:05Z"),
      },
    ]);
  });

  test("registry_package carries the same object under its own key", () => {
    const { package: pkg, ...rest } = samples.githubPackagePublished;
    const body = { ...rest, registry_package: pkg };
    const events = parseGitHub(json(body), { "x-github-event": "registry_package" }).events;
    assert.equal(events[0]?.tag, "v1.4.2");
  });

  test("ping, other events, untagged versions and other package types are not changes", () => {
    const body = json(samples.githubPackagePublished);
    assert.deepEqual(parseGitHub(body, { "x-github-event": "ping" }).events, []);
    assert.deepEqual(parseGitHub(body, {}).events, []);
    const npm = structuredClone(samples.githubPackagePublished);
    npm.package.package_type = "npm";
    assert.deepEqual(parseGitHub(json(npm), headers).events, []);
    const untagged = structuredClone(samples.githubPackagePublished);
    untagged.package.package_version.container_metadata.tag.name = "";
    untagged.package.package_version.package_url = "ghcr.io/octo-org/app";
    assert.deepEqual(parseGitHub(json(untagged), headers).events, []);
  });

  test("without package_url the name is built from namespace and name", () => {
    const body = structuredClone(samples.githubPackagePublished) as {
      package: Record<string, unknown>;
    };
    const version = body.package.package_version as Record<string, unknown>;
    delete version.package_url;
    body.package.namespace = "Octo-Org";
    assert.equal(parseGitHub(json(body), headers).events[0]?.repository, "ghcr.io/octo-org/app");
  });
});

describe("Quay", () => {
  test("updated_tags as a list, and as the older tag -> image map", () => {
    assert.deepEqual(parseQuay(json(samples.quayPush)).events, [
      { repository: "quay.io/dgangaia/test", tag: "latest", action: "push" },
    ]);
    assert.deepEqual(parseQuay(json(samples.quayPushOld)).events, [
      { repository: "quay.io/devtable/ubuntu", tag: "latest", action: "push" },
    ]);
  });

  test("no updated_tags", () => {
    refused(() => parseQuay(json({ ...samples.quayPush, updated_tags: "latest" })), /updated_tags/);
  });
});

describe("ACR", () => {
  test("one event per request, host from request.host", () => {
    assert.deepEqual(parseAcr(json(samples.acrPush)).events, [
      {
        repository: "myregistry.azurecr.io/hello-world",
        tag: "v1",
        digest: "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5",
        action: "push",
        timestamp: new Date("2017-11-17T16:52:01.343Z"),
      },
    ]);
  });

  test("chart pushes are ignored; a distribution envelope is read too", () => {
    assert.deepEqual(parseAcr(json({ ...samples.acrPush, action: "chart_push" })).events, []);
    assert.equal(parseAcr(json({ events: [samples.acrPush] })).events.length, 1);
  });
});

describe("Artifact Registry via Pub/Sub push", () => {
  test("INSERT with tag and digest", () => {
    assert.deepEqual(parseGar(json(samples.pubSubPush(samples.garNotification))).events, [
      {
        repository: "us-east1-docker.pkg.dev/my-project/my-repo/hello-world",
        tag: "1.1",
        digest: samples.garNotification.digest.slice(
          samples.garNotification.digest.indexOf("@") + 1,
        ),
        action: "push",
        timestamp: new Date("2021-02-26T19:13:55.749Z"),
      },
    ]);
  });

  test("DELETE carrying only a tag; INSERT of an untagged image is no tag change", () => {
    const del = samples.pubSubPush({ action: "DELETE", tag: samples.garNotification.tag });
    assert.deepEqual(
      parseGar(json(del)).events.map((e) => [e.action, e.repository, e.tag]),
      [["delete", "us-east1-docker.pkg.dev/my-project/my-repo/hello-world", "1.1"]],
    );
    const upload = samples.pubSubPush({ action: "INSERT", digest: samples.garNotification.digest });
    assert.deepEqual(parseGar(json(upload)).events, []);
  });

  test("data that is not base64 JSON", () => {
    refused(
      () => parseGar(json({ message: { data: "not base64!" } })),
      /message\.data: not base64/,
    );
    const notJson = { message: { data: Buffer.from("{").toString("base64") } };
    refused(() => parseGar(json(notJson)), /not valid JSON/);
    refused(
      () =>
        parseGar(
          json(samples.pubSubPush({ action: "INSERT", tag: "us-east1-docker.pkg.dev/p/r/i" })),
        ),
      /no tag in it/,
    );
  });
});

describe("ECR via EventBridge", () => {
  test("host from account and region; the documented short digest is dropped", () => {
    assert.deepEqual(parseEcr(json(samples.ecrPush)).events, [
      {
        repository: "123456789012.dkr.ecr.us-west-2.amazonaws.com/my-repository-name",
        tag: "latest",
        action: "push",
        timestamp: new Date("2019-11-16T01:54:34Z"),
      },
    ]);
  });

  test("failed actions and other detail types are ignored", () => {
    const failed = { ...samples.ecrPush, detail: { ...samples.ecrPush.detail, result: "FAILURE" } };
    assert.deepEqual(parseEcr(json(failed)).events, []);
    assert.deepEqual(
      parseEcr(json({ ...samples.ecrPush, "detail-type": "ECR Image Scan" })).events,
      [],
    );
  });
});

describe("generic", () => {
  test("one object or a list; the tag may be left out", () => {
    assert.deepEqual(parseGeneric(json(samples.genericPush)).events, [
      { repository: "registry.example.com/team/app", tag: "v2", action: "push" },
    ]);
    assert.deepEqual(
      parseGeneric(json([samples.genericPush, { repository: "registry.example.com/team/b" }]))
        .events,
      [
        { repository: "registry.example.com/team/app", tag: "v2", action: "push" },
        { repository: "registry.example.com/team/b", action: "push" },
      ],
    );
    refused(
      () => parseGeneric(json({ repository: 42 })),
      /at repository: expected a string, got a number/,
    );
    refused(() => parseGeneric(json({ repository: "a".repeat(600) })), /longer than 512/);
  });
});
