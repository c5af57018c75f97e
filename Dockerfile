# The lab's three Node services, one target each: balancer, backend, loadgen.
#   docker build --target balancer -t lab/balancer .
# They share the build stage (one `npm ci`, one compile) and the runtime base. Where no registry is
# reachable, pass a local base: --build-arg NODE_IMAGE=local/node:base (see README).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json ./
COPY common/package.json common/
COPY balancer/package.json balancer/
COPY backend/package.json backend/
COPY loadgen/package.json loadgen/
RUN npm ci --no-audit --no-fund
COPY common/tsconfig.json common/
COPY common/src common/src
COPY balancer/tsconfig.json balancer/
COPY balancer/src balancer/src
COPY backend/tsconfig.json backend/
COPY backend/src backend/src
COPY loadgen/tsconfig.json loadgen/
COPY loadgen/src loadgen/src
RUN npm run build

# Manifests only: each service's stage installs its own production dependencies from the lockfile,
# those of @lab/common with them, and copies common/dist beside its own dist.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY common/package.json common/
COPY balancer/package.json balancer/
COPY backend/package.json backend/
COPY loadgen/package.json loadgen/

FROM runtime AS balancer
RUN npm ci --no-audit --no-fund --omit=dev --workspace=@lab/balancer && npm cache clean --force
COPY --from=build /src/common/dist common/dist
COPY --from=build /src/balancer/dist balancer/dist
COPY balancer/examples /etc/balancer
# The compose lab's `certs` service (this image, run once) writes the TLS certificates here, into a volume
# that takes this folder's owner when it is created: the balancer, user node, can then read its key.
RUN mkdir /certs && chown node:node /certs
USER node
EXPOSE 8080 8081 8443 9090
ENV BALANCER_CONFIG=/etc/balancer/compose.yaml
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "balancer/dist/main.js"]

# Traffic on PORT (3000), the TCP echo on TCP_PORT (4000); fault injection and /metrics on CONTROL_PORT (3100). The health check asks
# the control port, so an injected fault (failing /health, hang) shows in the balancer, not in Docker.
FROM runtime AS backend
RUN npm ci --no-audit --no-fund --omit=dev --workspace=@lab/backend && npm cache clean --force
COPY --from=build /src/common/dist common/dist
COPY --from=build /src/backend/dist backend/dist
USER node
EXPOSE 3000 3100 4000
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.CONTROL_PORT || 3100) + '/chaos').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "backend/dist/main.js"]

# With TARGET_URL set: a steady RATE of requests, client metrics on METRICS_PORT (9464). Without it,
# the one-off CLI: docker run IMAGE node loadgen/dist/main.js --url URL.
FROM runtime AS loadgen
RUN npm ci --no-audit --no-fund --omit=dev --workspace=@lab/loadgen && npm cache clean --force
COPY --from=build /src/common/dist common/dist
COPY --from=build /src/loadgen/dist loadgen/dist
USER node
EXPOSE 9464
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.METRICS_PORT || 9464) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "loadgen/dist/main.js"]
