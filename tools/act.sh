#!/usr/bin/env bash
# act.sh: runs .github/workflows/e2e.yml on this machine with act
# (github.com/nektos/act), as GitHub would run it, with the steps on this
# host (self-hosted: Docker and kind work here).
#
#   tools/act.sh push                  a push of HEAD to main: every service, the
#                                      example, the gate; caches written
#   tools/act.sh pull_request SERVICE  a pull request whose one commit
#                                      changes SERVICE's suite: that
#                                      service, the example, the gate
#
# Further arguments go to act (-j JOB runs one job and what it needs).
#
# Everything the workflow does happens: checkout, setup-go (from act's tool
# cache, seeded with the installed Go), the caches through act's cache
# server, the artifacts through act's artifact server (both on 127.0.0.1),
# the gate. GitHub's actions come from a folder at the commits the
# workflow pins (ACTIONS_DIR, default ../shared/actions). The node and
# third-party images come in as repository variables, the knob a team
# with a registry mirror uses: the offline images of this machine
# (offline-kind's E2E_NODE_IMAGE, and E2E_POSTGRES_IMAGE / E2E_REDIS_IMAGE
# or OFFLINE_POSTGRES_IMAGE / OFFLINE_REDIS_IMAGE, in the environment). Only Kubernetes 1.34 has an
# offline node image, so E2E_KUBERNETES narrows the matrix to 1.34 and the
# example job, which runs on the 1.37 variable, gets the 1.34 image too.
#
# The log (each line with the time it was printed) goes to
# $ACT_STATE/logs/<event>-<time>.log; at the end, each job's time.
# Exit status: act's (non-zero when a job failed).
set -euo pipefail

# The whole script is one function, read before it runs: editing this file
# while a run is under way does not change that run.
main() {
  root=$(cd "$(dirname "$0")/.." && pwd)
  event=${1:?usage: tools/act.sh push | pull_request SERVICE [act flags]}
  shift
  service=
  if [ "$event" = pull_request ]; then
    service=${1:?usage: tools/act.sh pull_request SERVICE [act flags]}
    shift
  fi
  state=${ACT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/testbed-act}
  actions=${ACTIONS_DIR:-$(cd "$root/.." && pwd)/shared/actions}
  [ -d "$actions" ] || actions=/work/shared/actions
  act_version=v0.2.89
  # ACT_ARTIFACT_DIR: where act's artifact server keeps the uploads.
  artifacts=${ACT_ARTIFACT_DIR:-$state/artifacts}
  mkdir -p "$state/logs" "$state/cache"

  : "${E2E_NODE_IMAGE:?set E2E_NODE_IMAGE (and OFFLINE_POSTGRES_IMAGE, OFFLINE_REDIS_IMAGE): eval \"\$(offline-kind/build.sh env)\"}"

  # act itself, from the Go module proxy.
  gobin=$(go env GOPATH)/bin
  if ! [ -x "$gobin/act" ] || ! "$gobin/act" --version | grep -q "${act_version#v}"; then
    echo "act.sh: installing act $act_version" >&2
    go install "github.com/nektos/act@$act_version"
  fi
  act=$gobin/act

  # setup-go finds the installed Go in act's tool cache (the version of
  # go.mod's toolchain line) instead of downloading it.
  gover=$(go env GOVERSION)
  gover=${gover#go}
  want=$(sed -n 's/^toolchain go//p' "$root/go.mod")
  if [ "$want" != "$gover" ]; then
    echo "act.sh: go.mod's toolchain is go$want, the installed Go is go$gover: setup-go would download go$want, which this machine cannot" >&2
    exit 2
  fi
  tc=$HOME/.cache/act/tool_cache/go/$gover
  mkdir -p "$tc"
  [ -e "$tc/x64" ] || ln -s "$(go env GOROOT)" "$tc/x64"
  touch "$tc/x64.complete"

  # Each action the workflow pins, served from its folder; an action with
  # no folder at its pinned commit stops the run before it starts.
  declare -A folder=(
    [actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1]=checkout
    [actions/setup-go@b7ad1dad31e06c5925ef5d2fc7ad053ef454303e]=setup-go
    [actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae]=cache
    [actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02]=upload-artifact-v4.6.2
    [actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c]=download-artifact
  )
  local_repos=()
  while read -r use; do
    repo=$(echo "$use" | cut -d/ -f1-2 | cut -d@ -f1)
    key=$repo@${use##*@}
    dir=${folder[$key]:-}
    if [ -z "$dir" ] || ! [ -d "$actions/$dir" ]; then
      echo "act.sh: the workflow uses $use: no local copy of $key under $actions (add it to the table in tools/act.sh)" >&2
      exit 2
    fi
    local_repos+=(--local-repository "$key=$actions/$dir")
  done < <(sed -n 's/^ *\(- \)\{0,1\}uses: *\([^ #]*\).*/\2/p' "$root"/.github/workflows/*.yml | sort -u)

  # The repository act runs: a clone of HEAD (what is committed, as a
  # runner checks it out; edits made while it runs do not reach it), for
  # a pull request with one commit on top that changes the service's
  # suite.
  eventfile=$state/event-$event.json
  head=$(git -C "$root" rev-parse HEAD)
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  git clone -q "$root" "$dir"
  git -C "$dir" checkout -q -B main "$head"
  case $event in
  push)
    printf '{"ref":"refs/heads/main","before":"%s","after":"%s","repository":{"default_branch":"main"}}\n' \
      "$(git -C "$root" rev-parse HEAD~1 2>/dev/null || echo "$head")" "$head" >"$eventfile"
    ;;
  pull_request)
    suite=$root/test/e2e/$service
    [ -d "$suite" ] || { echo "act.sh: no suite at test/e2e/$service" >&2; exit 2; }
    git -C "$dir" checkout -q -b act-change "$head"
    file=$(find "$dir/test/e2e/$service" -maxdepth 1 -name '*_test.go' | sort | head -1)
    echo "// A change made by tools/act.sh for a pull_request run." >>"$file"
    git -C "$dir" -c user.name=act -c user.email=act@localhost commit -q -am "act: change $service's suite"
    printf '{"number":1,"pull_request":{"number":1,"base":{"ref":"main","sha":"%s"},"head":{"ref":"act-change","sha":"%s"}},"repository":{"default_branch":"main"}}\n' \
      "$head" "$(git -C "$dir" rev-parse HEAD)" >"$eventfile"
    ;;
  *)
    echo "usage: tools/act.sh push | pull_request SERVICE" >&2
    exit 2
    ;;
  esac

  log=$state/logs/$event-$(date +%Y%m%d-%H%M%S).log
  echo "act.sh: $event event in $dir, log $log" >&2
  t0=$SECONDS
  set +e
  (
    cd "$dir"
    # One job at a time (ACT_CONCURRENT_JOBS to change it): on GitHub each
    # job has a runner to itself; here they share 2 cores, and act's
    # default (one job per core) ran the test job's clusters beside an
    # e2e job's, which made both slower than running them one after the
    # other and pushed the timing-bound tests (the cancel test's 10 s) past
    # their limits.
    # act hands its own environment to every job: only what a runner has,
    # so that no E2E_* variable of this shell makes a job pass that would
    # fail on GitHub.
    env -i PATH="$PATH" HOME="$HOME" LANG="${LANG:-C.UTF-8}" ${DOCKER_HOST:+DOCKER_HOST="$DOCKER_HOST"} \
    "$act" "$event" -W .github/workflows/e2e.yml -e "$eventfile" \
      -P ubuntu-24.04=-self-hosted \
      --concurrent-jobs "${ACT_CONCURRENT_JOBS:-1}" \
      --cache-server-addr 127.0.0.1 --cache-server-path "$state/cache" \
      --artifact-server-addr 127.0.0.1 --artifact-server-path "$artifacts" \
      --var E2E_NODE_IMAGE_1_34="$E2E_NODE_IMAGE" \
      --var E2E_NODE_IMAGE_1_37="$E2E_NODE_IMAGE" \
      --var E2E_KUBERNETES='["1.34"]' \
      --var E2E_POSTGRES_IMAGE="${E2E_POSTGRES_IMAGE:-${OFFLINE_POSTGRES_IMAGE:-}}" \
      --var E2E_REDIS_IMAGE="${E2E_REDIS_IMAGE:-${OFFLINE_REDIS_IMAGE:-}}" \
      "${local_repos[@]}" "$@" 2>&1
  ) | while IFS= read -r line; do printf '%(%H:%M:%S)T %s\n' -1 "$line"; done | tee "$log"
  status=${PIPESTATUS[0]}
  set -e

  # Each job's time: from its first line to its last.
  echo "act.sh: $event: act exited $status after $((SECONDS - t0)) s; each job:" >&2
  awk '
    match($0, /^[0-9:]+ \[[^]]*\]/) {
      job = substr($0, 11, RLENGTH - 11)
      split($1, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]
      if (!(job in first)) { first[job] = s; order[n++] = job }
      last[job] = s
      if ($0 ~ /Job succeeded/) res[job] = "succeeded"
      if ($0 ~ /Job failed/) res[job] = "failed"
    }
    END {
      for (i = 0; i < n; i++) { j = order[i]; d = last[j] - first[j]; sum += d; printf "  %-60s %5d s  %s\n", j, d, res[j] }
      printf "  %-60s %5d s\n", "sum of the job times", sum
    }
  ' "$log" >&2
  # What the run built: a service binary compiled, an image built, a node
  # image baked (testbed prints each as it happens).
  echo "act.sh: $(grep -c '| compiled ' "$log") binaries compiled, $(grep -c '| built: ' "$log") images built, $(grep -c '| baked: ' "$log") node images baked" >&2
  exit "$status"
}

main "$@"
