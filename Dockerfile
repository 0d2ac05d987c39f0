# docker-socket-filter as an image that takes the same environment as Tecnativa's
# docker-socket-proxy: `docker run -e CONTAINERS=1 -v /var/run/docker.sock:/var/run/docker.sock:ro ...`
#
#   docker build -t docker-socket-filter .
#
# Build arguments (docs/image.md):
#   NODE_IMAGE           the Node 24 image both stages start from (default the official node:24-slim)
#   npm_config_offline   `true`: install from an npm cache put at .npm-cache/ in the build context,
#                        never from the network (how the image test builds it with no registry)
#   npm_config_registry  another registry or mirror

ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# An npm cache for offline builds, copied only when the context has one. package.json is named
# too because the legacy builder refuses a COPY whose only source is a pattern that matches nothing.
COPY package.json .npm-cach[e] /tmp/npm-cache/
COPY package.json package-lock.json ./
ARG npm_config_offline npm_config_registry
# `npm install`, not `npm ci`: the lockfile pins every version, but a lockfile written on one
# platform may lack other platforms' optional binaries (rollup's for musl or arm64), which
# `npm ci` refuses and `npm install` fetches for the platform it runs on. Scripts stay off: the
# build needs none (esbuild and rollup ship their binaries as optional packages).
RUN npm install --no-save --no-audit --no-fund --ignore-scripts --cache /tmp/npm-cache \
 && rm -rf /tmp/npm-cache
COPY tsconfig.json tsup.config.ts ./
COPY src ./src
# The image gets dist/cli.js (which bundles the library) and the package's `dependencies` (pure
# JavaScript), gathered in /app; prune leaves the emptied scope folders behind.
RUN node_modules/.bin/tsup \
 && npm prune --omit=dev --no-audit --no-fund --ignore-scripts \
 && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -exec rmdir {} + \
 && mkdir -p /app/dist \
 && cp -R package.json node_modules /app/ \
 && cp dist/cli.js dist/cli.js.map /app/dist/

FROM ${NODE_IMAGE}
# Same defaults as Tecnativa's image, spelled out so `docker inspect` shows what is granted.
# LISTEN=:2375 is every interface (dual-stack [::], or 0.0.0.0 with DISABLE_IPV6=1), as in
# Tecnativa's image; the CLI alone defaults to loopback.
ENV NODE_ENV=production \
    LISTEN=:2375 \
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
COPY --from=build /app /app
WORKDIR /app
# Not root. The docker socket is usually root:docker 0660, so give the container the socket's
# group: `docker run --group-add "$(stat -c %g /var/run/docker.sock)" ...` (compose: group_add).
# `node` (uid 1000) is the official Node images' unprivileged user.
USER node
EXPOSE 2375
# GET /_ping through the guard when PING is granted (so dockerd is reached too), else a connect.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["node", "/app/dist/cli.js", "--healthcheck"]
# `docker stop` sends SIGTERM: the guard stops accepting, lets requests finish for SHUTDOWN_GRACE
# seconds (default 5, below docker stop's 10 s), cuts the remaining streams and exits 0.
# A 2 MB young generation: Node's default grows to ~130 MB under load, costing RSS and p99 latency
# (README, Benchmarks).
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/dist/cli.js"]
