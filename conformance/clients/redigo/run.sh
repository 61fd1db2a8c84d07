#!/usr/bin/env bash
# redigo, Debian's packaged source (golang-github-gomodule-redigo-dev) built
# offline with Debian's Go, through the conformance scenarios (the contract:
# conformance/README.md).
set -euo pipefail
cd "$(dirname "$0")"

packages=(golang-go golang-github-gomodule-redigo-dev)
installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { "${sudo[@]}" apt-get update -qq >&2 && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
fi

# GOPATH mode against the packaged source in /usr/share/gocode: no module
# proxy, no download, a build cache of this folder's own.
export GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= GOENV=off
export GOCACHE=$PWD/.cache/go-build
# The version Debian packages, for the results table: 1:1.8.3-1 is redigo 1.8.3.
debian=$(dpkg-query -W -f='${Version}' golang-github-gomodule-redigo-dev)
upstream=${debian#*:}
upstream=${upstream%-*}
go build -o .cache/suite \
  -ldflags "-X 'main.version=redigo@$upstream (Debian $debian, $(go env GOVERSION))'" suite.go
exec .cache/suite
