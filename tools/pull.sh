#!/usr/bin/env bash
# pull.sh IMAGE...: makes each image present in the Docker engine. An image
# the engine already has is kept (an offline or self-hosted runner's own
# copy); any other is pulled, up to three tries 10 s apart, each bounded.
set -euo pipefail
for image in "$@"; do
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "have $image"
    continue
  fi
  for try in 1 2 3; do
    if timeout 600 docker pull -q "$image"; then
      break
    fi
    if [ "$try" = 3 ]; then
      echo "pull.sh: could not pull $image in 3 tries: check the registry, or name a mirror's copy (the repository variable of the image)" >&2
      exit 1
    fi
    echo "pull.sh: pulling $image failed (try $try of 3), again in 10 s" >&2
    sleep 10
  done
done
