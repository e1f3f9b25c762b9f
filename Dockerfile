# syntax=docker/dockerfile:1
# regscan's container image, the one deploy/deployment.yaml runs. Build it with
#   npm run image            # docker build -t ghcr.io/regscan/regscan:0.1.0 .
# and run it with
#   docker run -p 8080:8080 -v regscan-cache:/var/cache/regscan ghcr.io/regscan/regscan:0.1.0 \
#     serve --config /etc/regscan/regscan.yaml --image alpine
#
# No REGSCAN_* variable is set here: environment variables override the configuration file,
# so a default set in the image would beat the ConfigMap's settings. The image's defaults are
# a configuration file (deploy/image/regscan.yaml, replaced by whatever is mounted at
# /etc/regscan) and XDG_CACHE_HOME, which only moves the program's own default SQLite path.
#
# Base images are pinned by digest (a tag can move under a rebuild). The digest is the one
# node:24-bookworm-slim had at Node.js 24.18.0 (the same digest is pinned by two unrelated
# public projects; no registry is reachable from where this was written, so it was not pulled
# here). To move to a newer Node.js 24 image, run scripts/pin-base-image.sh (it asks the
# registry for the tag's current digest and writes it here).
ARG NODE_IMAGE=docker.io/library/node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

# --- build: compile TypeScript and the native SQLite binding --------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Scripts off: `prepare` would build before the sources are copied; the native module is
# built explicitly instead. Optional dependencies (Kubernetes client, cloud SDKs) are kept:
# the daemon in a cluster uses them.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# --- runtime: only what regscan needs, as a non-root user ------------------------------
FROM ${NODE_IMAGE}
# The heap cap: V8 grows its heap far past what regscan keeps live (about 40 MiB with a
# 20,000-tag repository, 70-90 MiB filling 1,000 repositories) before collecting: 128 MiB of
# old space and 8 MiB semi-spaces (V8's 16 MiB ones add 16 MiB of RSS for nothing measurable)
# keep a replica under 256 MiB of RSS (234 MiB in bench:scale at 100,000 tags; 160 MiB and
# 16 MiB peaked at 282 MiB).
# malloc: buffers of 128 KiB and more mapped on their own and unmapped when freed. glibc's
# default threshold rises to the largest buffer freed so far, and answers and store replies
# of megabytes then come from its main arena and stay resident once freed (bench:scale at
# 2,000,000 tags: 40-48 MiB of arena per replica for about 20 MiB of live buffers).
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=8" \
    MALLOC_MMAP_THRESHOLD_=131072 \
    XDG_CACHE_HOME=/var/cache
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY LICENSE ./LICENSE
COPY deploy/image/regscan.yaml /etc/regscan/regscan.yaml
RUN mkdir -p /var/cache/regscan && chown node:node /var/cache/regscan
USER node
VOLUME ["/var/cache/regscan"]
EXPOSE 8080
# /healthz needs no token. The port is the one deploy/image/regscan.yaml listens on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# GC on the main thread (V8 allows the flag only on the command line, not in NODE_OPTIONS):
# V8's background marking and parallel scavenges spent 12-22% more CPU for the same work
# (bench:scale, one replica, 43,500 requests: 38-43 CPU-s against 48-52), CPU a container's
# quota counts; the fill was as fast or faster (README: Scaling out).
ENTRYPOINT ["node", "--single-threaded-gc", "/app/bin/regscan.mjs"]
CMD ["serve", "--config", "/etc/regscan/regscan.yaml"]
