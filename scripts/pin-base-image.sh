#!/usr/bin/env bash
# Pins the Dockerfile's base image to the digest its tag has now (the multi-platform index,
# so every architecture keeps working). Needs network access to Docker Hub and skopeo
# (Debian package `skopeo`); `docker buildx imagetools inspect node:24-bookworm-slim` shows
# the same digest. Review and commit the change to the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-docker.io/library/node:24-bookworm-slim}"
digest="sha256:$(skopeo inspect --raw "docker://${tag}" | sha256sum | cut -d' ' -f1)"
sed -i "s|^ARG NODE_IMAGE=.*|ARG NODE_IMAGE=${tag}@${digest}|" Dockerfile
grep '^ARG NODE_IMAGE=' Dockerfile
