# syntax=docker/dockerfile:1
# regscan: build with `docker build -t regscan .`, run with
#   docker run -p 8080:8080 -v regscan-cache:/var/lib/regscan regscan serve --image alpine

# --- build: compile TypeScript and the native SQLite binding --------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /src
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Scripts off: `prepare` would build before the sources are copied; the native module is
# built explicitly instead.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# --- runtime: only what regscan needs, as a non-root user ------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    REGSCAN_LISTEN=0.0.0.0:8080 \
    REGSCAN_CACHE=sqlite:/var/lib/regscan/cache.db
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
RUN mkdir -p /var/lib/regscan && chown node:node /var/lib/regscan
USER node
VOLUME ["/var/lib/regscan"]
EXPOSE 8080
# Health on the port REGSCAN_LISTEN names (default 8080); /healthz needs no token.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const p=(process.env.REGSCAN_LISTEN||':8080').split(':').pop();fetch('http://127.0.0.1:'+p+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/regscan.mjs"]
CMD ["serve"]
