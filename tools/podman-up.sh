#!/usr/bin/env bash
# Make rootful Podman able to run kind's nodes on this kind of machine
# (what was needed here; .ci/run does not run it). Idempotent.
#   1. podman and the CNI dnsname plugin (kind's nodes find each other by
#      name) from Debian's packages;
#   2. a runc wrapper: as ../shared/tools/docker-up.sh's (CAP_SYS_RESOURCE
#      is absent from this machine's bounding set, so it is dropped from the
#      spec), and it also drops the process rlimits Podman sets (nproc
#      1048576), which runc cannot raise without that capability;
#   3. the kind network made again with DNS, and the node image copied from
#      Docker's store (E2E_NODE_IMAGE=localhost/<image> then).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
command -v podman >/dev/null || apt-get install -y -qq --no-install-recommends podman >/dev/null
[ -x /usr/lib/cni/dnsname ] || apt-get install -y -qq --no-install-recommends golang-github-containernetworking-plugin-dnsname >/dev/null

wrapper=/usr/local/bin/runc-podman
cat > "$wrapper" <<'WRAP'
#!/bin/bash
args=("$@"); bundle=""; procfile=""
for ((i=0;i<${#args[@]};i++)); do
  case "${args[$i]}" in
    --bundle|-b) bundle="${args[$((i+1))]}";;
    --bundle=*) bundle="${args[$i]#--bundle=}";;
    --process|-p) procfile="${args[$((i+1))]}";;
    --process=*) procfile="${args[$i]#--process=}";;
  esac
done
strip() {
  python3 - "$1" "$2" <<'PY'
import json, sys
path, mode = sys.argv[1], sys.argv[2]
spec = json.load(open(path))
proc = spec.get("process", {}) if mode == "bundle" else spec
proc.pop("rlimits", None)
caps = proc.get("capabilities") or {}
for k in list(caps):
    if isinstance(caps[k], list):
        caps[k] = [c for c in caps[k] if c != "CAP_SYS_RESOURCE"]
json.dump(spec, open(path, "w"))
PY
}
[[ -n "$bundle" && -f "$bundle/config.json" ]] && strip "$bundle/config.json" bundle
[[ -n "$procfile" && -f "$procfile" ]] && strip "$procfile" process
exec /usr/sbin/runc "$@"
WRAP
chmod 0755 "$wrapper"
mkdir -p /etc/containers
conf=/etc/containers/containers.conf
if [ -e "$conf" ] && ! grep -q '^# made by testbed tools/podman-up.sh' "$conf"; then
  echo "podman-up: $conf exists and this script did not write it: merge the runtime below into it by hand" >&2
  exit 1
fi
cat > "$conf" <<'CONF'
# made by testbed tools/podman-up.sh
[engine]
runtime = "runcpodman"
[engine.runtimes]
runcpodman = ["/usr/local/bin/runc-podman"]
CONF
if podman network exists kind && [ "$(podman network inspect kind --format '{{.DNSEnabled}}')" != true ]; then
  podman network rm kind >/dev/null
fi
if [ -n "${E2E_NODE_IMAGE:-}" ] && ! podman image exists "localhost/$E2E_NODE_IMAGE"; then
  docker save "$E2E_NODE_IMAGE" | podman load >/dev/null
fi
podman --version
