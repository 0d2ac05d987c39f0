# syntax=docker/dockerfile:1
# docker-socket-filter as an image that takes the same environment as Tecnativa's
# docker-socket-proxy: `docker run -e CONTAINERS=1 -v /var/run/docker.sock:/var/run/docker.sock:ro ...`

FROM node:24-alpine AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsup.config.ts ./
COPY src ./src
RUN npx tsup && npm prune --omit=dev --ignore-scripts

FROM node:24-alpine
# Same defaults as Tecnativa's image, spelled out so `docker inspect` shows what is granted.
ENV NODE_ENV=production \
    PRESET=tecnativa \
    SOCKET_PATH=/var/run/docker.sock \
    LOG_LEVEL=info \
    DISABLE_IPV6=0 \
    EVENTS=1 \
    PING=1 \
    VERSION=1 \
    AUTH=0 \
    SECRETS=0 \
    POST=0 \
    BUILD=0 \
    COMMIT=0 \
    CONFIGS=0 \
    CONTAINERS=0 \
    ALLOW_START=0 \
    ALLOW_STOP=0 \
    ALLOW_RESTARTS=0 \
    DISTRIBUTION=0 \
    EXEC=0 \
    GRPC=0 \
    IMAGES=0 \
    INFO=0 \
    NETWORKS=0 \
    NODES=0 \
    PLUGINS=0 \
    SERVICES=0 \
    SESSION=0 \
    SWARM=0 \
    SYSTEM=0 \
    TASKS=0 \
    VOLUMES=0
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Not root. The docker socket is usually root:docker 0660, so give the container the socket's
# group: `docker run --group-add "$(stat -c %g /var/run/docker.sock)" ...` (compose: group_add).
USER node
EXPOSE 2375
# GET /_ping through the guard when PING is granted (so dockerd is reached too), else a connect.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["node", "/app/dist/cli.js", "--healthcheck"]
# SIGTERM: stop accepting, let requests finish for SHUTDOWN_GRACE seconds (default 5, below
# `docker stop`'s 10 s), cut the remaining streams, exit 0.
STOPSIGNAL SIGTERM
# A 2 MB young generation: Node's default grows to ~130 MB under load, costing RSS and p99 latency
# (README, Benchmarks).
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/dist/cli.js"]
