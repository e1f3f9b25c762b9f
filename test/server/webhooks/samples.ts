/**
 * Recorded sample bodies of each webhook kind, taken from each sender's own documentation
 * (the source is cited above each one). Where a document elides a value (a digest cut short,
 * a `{{placeholder}}`), the sample fills it in and says so.
 */

// https://distribution.github.io/distribution/about/notifications/ ("Events"): the
// documented example event, a manifest pull; `push` and a blob push are derived from it.
export const distributionPull = {
  events: [
    {
      id: "320678d8-ca14-430f-8bb6-4ca139cd83f7",
      timestamp: "2016-03-09T14:44:26.402973972-08:00",
      action: "pull",
      target: {
        mediaType: "application/vnd.docker.distribution.manifest.v2+json",
        digest: "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
        size: 708,
        length: 708,
        repository: "hello-world",
        url: "http://192.168.100.227:5000/v2/hello-world/manifests/sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
        tag: "latest",
      },
      request: {
        id: "6df24a34-0959-4923-81ca-14f09767db19",
        addr: "192.168.64.11:42961",
        host: "192.168.100.227:5000",
        method: "GET",
        useragent: "curl/7.38.0",
      },
      actor: {},
      source: { addr: "xtal.local:5000", instanceID: "a53db899-3b4b-4a62-a067-8dd013beaca4" },
    },
  ],
};

const pulled = distributionPull.events[0] as (typeof distributionPull.events)[number];

/** The same event as a manifest push (`PUT`), which is what regscan acts on. */
export const distributionPush = {
  events: [{ ...pulled, action: "push", request: { ...pulled.request, method: "PUT" } }],
};

/** A layer upload: distribution 2.x reports blobs with `application/octet-stream`. */
export const distributionBlobPush = {
  events: [
    {
      ...pulled,
      action: "push",
      target: {
        mediaType: "application/octet-stream",
        digest: "sha256:1b930d010525941c1d56ec53b97bd057a67ae1865eebf042686d2a2d18271ced",
        size: 977,
        length: 977,
        repository: "hello-world",
        url: "http://192.168.100.227:5000/v2/hello-world/blobs/sha256:1b930d010525941c1d56ec53b97bd057a67ae1865eebf042686d2a2d18271ced",
      },
    },
  ],
};

// https://goharbor.io/docs/2.0.0/working-with-projects/project-configuration/configure-webhooks/
// ("Payload Format"): the documented PUSH_ARTIFACT notification of an HTTP endpoint.
export const harborPush = {
  type: "PUSH_ARTIFACT",
  occur_at: 1586922308,
  operator: "admin",
  event_data: {
    resources: [
      {
        digest: "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8",
        tag: "latest",
        resource_url: "hub.harbor.com/test-webhook/debian:latest",
      },
    ],
    repository: {
      date_created: 1586922308,
      name: "debian",
      namespace: "test-webhook",
      repo_full_name: "test-webhook/debian",
      repo_type: "private",
    },
  },
};

// https://docs.docker.com/docker-hub/repos/manage/webhooks/ ("Example webhook payload"),
// with the long `dockerfile` and `full_description` strings shortened.
export const dockerHubPush = {
  callback_url:
    "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
  push_data: { pushed_at: 1417566161, pusher: "trustedbuilder", tag: "latest" },
  repository: {
    comment_count: 0,
    date_created: 1417494799,
    description: "",
    dockerfile: "#\n# BUILD\t\tdocker build -t svendowideit/apt-cacher .\n...",
    full_description: "Docker Hub based automated build from a GitHub repo",
    is_official: false,
    is_private: true,
    is_trusted: true,
    name: "testhook",
    namespace: "svendowideit",
    owner: "svendowideit",
    repo_name: "svendowideit/testhook",
    repo_url: "https://registry.hub.docker.com/u/svendowideit/testhook/",
    star_count: 0,
    status: "Active",
  },
};

// https://docs.github.com/en/webhooks/webhook-events-and-payloads#package (the `package`
// event, action `published`, for a container package), abridged to the fields of its schema
// that matter here; `registry_package` carries the same object under `registry_package`.
export const githubPackagePublished = {
  action: "published",
  package: {
    id: 1_234_567,
    name: "app",
    namespace: "octo-org",
    description: "",
    ecosystem: "CONTAINER",
    package_type: "CONTAINER",
    html_url: "https://github.com/orgs/octo-org/packages/container/package/app",
    created_at: "2024-05-01T10:00:00Z",
    updated_at: "2024-05-01T10:00:05Z",
    owner: { login: "octo-org", id: 9_919, type: "Organization" },
    package_version: {
      id: 7_654_321,
      version: "sha256:ceebe538c5f4c3b32dba99b9c3b1d7401d6815db8d7240e8854c87b570a991e9",
      name: "sha256:ceebe538c5f4c3b32dba99b9c3b1d7401d6815db8d7240e8854c87b570a991e9",
      description: "",
      summary: "",
      created_at: "2024-05-01T10:00:00Z",
      updated_at: "2024-05-01T10:00:05Z",
      html_url: "https://github.com/orgs/octo-org/packages/container/app/7654321",
      metadata: [],
      container_metadata: {
        tag: {
          name: "v1.4.2",
          digest: "sha256:ceebe538c5f4c3b32dba99b9c3b1d7401d6815db8d7240e8854c87b570a991e9",
        },
        labels: {},
        manifest: {},
      },
      package_files: [],
      installation_command: "docker pull ghcr.io/octo-org/app:v1.4.2",
      package_url: "ghcr.io/octo-org/app:v1.4.2",
    },
    registry: {
      about_url:
        "https://docs.github.com/packages/learn-github-packages/introduction-to-github-packages",
      name: "GitHub CONTAINER registry",
      type: "CONTAINER",
      url: "https://CONTAINER.pkg.github.com/octo-org",
      vendor: "GitHub Inc",
    },
  },
  repository: { id: 1, name: "app", full_name: "octo-org/app", private: false },
  sender: { login: "octocat", id: 1, type: "User" },
};

// https://docs.redhat.com/en/documentation/red_hat_quay/3.4/html/use_red_hat_quay/repository_notifications
// ("Repository Push"): the documented notification.
export const quayPush = {
  name: "repository",
  repository: "dgangaia/test",
  namespace: "dgangaia",
  docker_url: "quay.io/dgangaia/test",
  homepage: "https://quay.io/repository/dgangaia/repository",
  updated_tags: ["latest"],
};

// https://gist.github.com/jakedt/7533338, Quay's own example of the older form, where
// `updated_tags` maps each tag to an image ID.
export const quayPushOld = {
  pushed_image_count: 2,
  name: "ubuntu",
  repository: "devtable/ubuntu",
  docker_url: "quay.io/devtable/ubuntu",
  updated_tags: { latest: "b750fe79269d2ec9a3c593ef05b4332b1d1a02a62b4accb2c21d589ff2f5f2dc" },
  namespace: "devtable",
  visibility: "private",
  homepage: "https://quay.io/repository/devtable/ubuntu",
};

// https://learn.microsoft.com/azure/container-registry/container-registry-webhook-reference
// ("Payload example: image push event"); the documentation masks parts of the IDs and the
// digest with "x", so the digest here is the Event Grid page's full one for the same push.
export const acrPush = {
  id: "cb8c3971-9adc-488b-xxxx-43cbb4974ff5",
  timestamp: "2017-11-17T16:52:01.343145347Z",
  action: "push",
  target: {
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    size: 524,
    digest: "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5",
    length: 524,
    repository: "hello-world",
    tag: "v1",
  },
  request: {
    id: "3cbb6949-7549-4fa1-xxxx-a6d5451dffc7",
    host: "myregistry.azurecr.io",
    method: "PUT",
    useragent:
      "docker/17.09.0-ce go/go1.8.3 git-commit/afdb6d4 kernel/4.10.0-27-generic os/linux arch/amd64 UpstreamClient(Docker-Client/17.09.0-ce \\(linux\\))",
  },
};

// https://cloud.google.com/artifact-registry/docs/configure-notifications ("Notification
// examples", the digest completed to full length) inside the push request of
// https://cloud.google.com/pubsub/docs/push ("Receive messages").
export const garNotification = {
  action: "INSERT",
  digest:
    "us-east1-docker.pkg.dev/my-project/my-repo/hello-world@sha256:6ec128e26cd5e4e4a4a7a3e1c3c1d4e7e6f2a8d8d6d8f4c7b0b0a6f0f4b3e1c2",
  tag: "us-east1-docker.pkg.dev/my-project/my-repo/hello-world:1.1",
};

export function pubSubPush(notification: unknown): unknown {
  const data = Buffer.from(JSON.stringify(notification)).toString("base64");
  return {
    message: {
      attributes: {},
      data,
      messageId: "2070443601311540",
      message_id: "2070443601311540",
      publishTime: "2021-02-26T19:13:55.749Z",
      publish_time: "2021-02-26T19:13:55.749Z",
    },
    subscription: "projects/myproject/subscriptions/mysubscription",
  };
}

// https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html ("Event for a
// completed image push"): the documented event; its digest is cut short there (60 hex
// digits), which regscan must and does drop as malformed.
export const ecrPush = {
  version: "0",
  id: "13cde686-328b-6117-af20-0e5566167482",
  "detail-type": "ECR Image Action",
  source: "aws.ecr",
  account: "123456789012",
  time: "2019-11-16T01:54:34Z",
  region: "us-west-2",
  resources: [],
  detail: {
    result: "SUCCESS",
    "repository-name": "my-repository-name",
    "image-digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
    "action-type": "PUSH",
    "image-tag": "latest",
  },
};

// regscan's own format (README, "Webhooks").
export const genericPush = { repository: "registry.example.com/team/app", tag: "v2" };
