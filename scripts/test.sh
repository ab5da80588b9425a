#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what the tests need, then
# runs them. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:--buildvcs=false}"

# Real Redis and PostgreSQL servers for the governance and storage tests
# (Debian's packages; the tests start their own throwaway instances on
# loopback).
need=()
command -v redis-server >/dev/null || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)   # the console's browser tests
command -v gcc >/dev/null || need+=(gcc)             # the race detector needs cgo
command -v etcd >/dev/null || need+=(etcd-server)    # the Kubernetes runtime's tests (internal/testkit/kubetest)
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt-get install ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go version
go mod download

# A real S3-compatible server for the s3:// tests: versitygw, built from the
# Go module proxy once and kept in GOPATH/bin (internal/testkit/s3test finds it there).
versitygw_version=v1.8.0   # internal/testkit/s3test.Version
if ! command -v versitygw >/dev/null && [ ! -x "$(go env GOPATH)/bin/versitygw" ]; then
  echo "== go install versitygw@$versitygw_version"
  go install "github.com/versity/versitygw/cmd/versitygw@$versitygw_version"
fi

# The Kubernetes runtime's tests run a real kube-apiserver (built from the
# k8s.io/kubernetes module source, ~10 minutes on 2 cores, cached outside
# the repository) and the chart's tests run helm. Build both in the
# background while gofmt and vet run; the tests wait for them.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/junction"
mkdir -p "$cache"
helm_bin="$cache/helm-v3.22.1/helm"
(
  set -e
  [ -x "$helm_bin" ] || (cd "$cache" && GOFLAGS=-mod=mod GOBIN="$(dirname "$helm_bin")" go install helm.sh/helm/v3/cmd/helm@v3.22.1)
  bash scripts/kube-apiserver.sh >"$cache/kube-apiserver.path"
) >"$cache/prepare.log" 2>&1 &
prepare=$!

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
# The packages where goroutines share state (admission, budgets, limits,
# the ledger writer, routing, hosting with its autoscaler and capture, the
# gateway, the HTTP/1.1 server, the assembled server and the real binary)
# run under the race detector; the rest run plain. Each package runs once.
race_pkgs=(
  ./internal/governance/... ./internal/ledger/... ./internal/router/...
  ./internal/hosting/... ./internal/hostrt/... ./internal/gateway/...
  ./internal/platform/server/... ./internal/platform/h1srv/... ./internal/platform/logbuf/...
  ./internal/wire/sse/...
  ./cmd/junction/...
)
echo "== waiting for kube-apiserver and helm"
if ! wait "$prepare"; then
  cat "$cache/prepare.log"; echo "could not build kube-apiserver or helm"; exit 1
fi
export JUNCTION_KUBE_APISERVER="$(tail -n 1 "$cache/kube-apiserver.path")" JUNCTION_HELM="$helm_bin"
echo "kube-apiserver: $JUNCTION_KUBE_APISERVER; helm: $JUNCTION_HELM"
race_list=$(go list "${race_pkgs[@]}")
plain_list=$(go list ./... | grep -vxF "$race_list")
echo "== go test -race ($(echo "$race_list" | wc -l) packages)"
CGO_ENABLED=1 go test -race -count=1 -timeout 25m $race_list
echo "== go test ($(echo "$plain_list" | wc -l) packages)"
go test -count=1 -timeout 15m $plain_list
bash scripts/fuzz.sh   # every fuzz target for a few seconds, FUZZ_BUDGET (60) s of fuzzing in all
