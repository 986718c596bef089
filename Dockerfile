# syntax=docker/dockerfile:1
# The ext_proc gRPC server (compose service "extproc", port 50051; see docs/conventions.md).
#   docker build -t llm-gateway-extproc .
#   docker run --rm -p 50051:50051 -v $PWD/config/gateway.yaml:/etc/gateway/gateway.yaml:ro llm-gateway-extproc

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies, compile extproc/ to dist/ (tsconfig.build.json) ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY extproc ./extproc
RUN npm run build

# ---- deps: production dependencies only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# package.json marks the package root (version, ESM) and protos/ is loaded at run time.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY protos ./protos
COPY config/embedded.yaml ./config/embedded.yaml
# The official image's unprivileged user (uid 1000); the app only reads its files.
USER node
EXPOSE 50051
# The server drains on SIGTERM (health NOT_SERVING, then in-flight streams get server.shutdownGraceMs).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/extproc/main.js"]
CMD ["--config", "/etc/gateway/gateway.yaml"]
