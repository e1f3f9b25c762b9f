#!/usr/bin/env bash
# `npm run image`: builds the container image that deploy/deployment.yaml runs, tagged as the
# manifests name it (ghcr.io/regscan/regscan:<package version>). Needs a Docker engine (or
# IMAGE_BUILDER=podman). Push it with `docker push "$IMAGE"` (set IMAGE for another registry).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./package.json").version')
image="${IMAGE:-ghcr.io/regscan/regscan:${version}}"
builder="${IMAGE_BUILDER:-docker}"

base=$(sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile)
if [[ ! "$base" =~ @sha256:[0-9a-f]{64}$ ]]; then
  echo "build-image: the Dockerfile's base image is not pinned by digest;" >&2
  echo "  run scripts/pin-base-image.sh (asks the registry for node:24-bookworm-slim's digest)" >&2
  exit 1
fi
if ! grep -q "image: ${image}\$" deploy/deployment.yaml; then
  echo "build-image: deploy/deployment.yaml does not run ${image}; update one or the other" >&2
  exit 1
fi

"$builder" build --tag "$image" "$@" .
echo "built ${image}; push it with: ${builder} push ${image}"
