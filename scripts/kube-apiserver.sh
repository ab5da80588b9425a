#!/usr/bin/env bash
# Builds kube-apiserver from the k8s.io/kubernetes module source (no package
# ships it and `go install` refuses its replace directives) into a cache
# directory outside the repository, and prints the binary's path. Does
# nothing but print the path when the binary is already there.
#
# The Kubernetes runtime's tests (internal/testkit/kubetest) run it against etcd on
# loopback. The build takes about 10 minutes on 2 cores; CI pays it once per
# run.
set -euo pipefail

version="${KUBE_VERSION:-v1.34.3}"
staging="v0.${version#v1.}" # k8s.io/api etc. are released as v0.<minor>.<patch>
cache="${JUNCTION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/junction}"
bin="$cache/kube-apiserver-$version"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"

# One build at a time: a second caller waits for the first and then finds
# the binary.
exec 9>"$cache/kube-apiserver.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

work=$(mktemp -d "$cache/kube-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

src=$(go mod download -json "k8s.io/kubernetes@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$src" ] || [ ! -d "$src" ]; then
  echo "kube-apiserver.sh: could not download k8s.io/kubernetes@$version" >&2
  exit 1
fi
cp -r "$src" k8s
chmod -R u+w k8s
cd k8s
rm -rf go.work go.work.sum vendor
# Use the published staging modules instead of the ./staging copies.
sed -i -e '/=> \.\/staging\//d' \
  -e "s#^\([[:space:]]*k8s\.io/[^[:space:]]*\) v0\.0\.0\$#\1 $staging#" go.mod
echo "kube-apiserver.sh: building kube-apiserver $version into $bin (about 10 minutes on 2 cores)" >&2
start=$(date +%s)
go build -trimpath -ldflags="-s -w" -o "$bin.tmp" ./cmd/kube-apiserver
mv "$bin.tmp" "$bin"
echo "kube-apiserver.sh: built in $(($(date +%s) - start)) s" >&2
echo "$bin"
