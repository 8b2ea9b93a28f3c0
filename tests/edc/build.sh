#!/usr/bin/env bash
# Gathers the jars of a vanilla Eclipse EDC control plane and data plane from the poms beside
# this script, into a cache outside the repository keyed by version. A plane is gathered only
# when its lib directory is missing. Maven's local repository is kept in the same cache.
#   tests/edc/build.sh          gather what is missing, print the version directory last
#   tests/edc/build.sh --print  print the version directory without gathering
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${CONNECTOR_EDC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/connector-operator/edc}
planes=(controlplane dataplane)

version_of() { # plane -> the edc.version property of its pom
  sed -n 's|.*<edc.version>\(.*\)</edc.version>.*|\1|p' "$here/$1/pom.xml" | head -n1
}
version=$(version_of controlplane)
for plane in "${planes[@]}"; do
  if [[ "$(version_of "$plane")" != "$version" ]]; then
    echo "tests/edc/$plane/pom.xml is not at EDC $version" >&2; exit 1
  fi
done
# Keyed by the poms too: a changed dependency list gathers anew instead of reusing stale jars.
poms=$(cat "$here/controlplane/pom.xml" "$here/dataplane/pom.xml" | sha256sum | cut -c1-12)
dir="$cache/$version-$poms"

if [[ "${1:-}" == "--print" ]]; then echo "$dir"; exit 0; fi

mkdir -p "$dir"
# Test workers may start at once on a cold cache: one gathers, the others wait and find it done.
exec 9>"$cache/.lock"
flock 9
log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

gather() { # plane
  local plane=$1
  if [[ -d "$dir/$plane/lib" ]]; then return 0; fi
  log "gathering the EDC $version $plane jars (a cold Maven cache downloads ~100 MB)"
  local start=$SECONDS tmp; tmp=$(mktemp -d "$dir/.tmp.$plane.XXXXXX")
  # Maven's output goes to stderr, the last stdout line being the path; Maven 3.8 writes
  # colour resets even in batch mode, which sed strips.
  mvn -B -ntp -q -f "$here/$plane/pom.xml" -Dmaven.repo.local="$cache/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DexcludeTypes=pom -DoutputDirectory="$tmp/lib" 2>&1 \
    | sed 's/\x1b\[[0-9;]*m//g' >&2 || { rm -rf "$tmp"; return 1; }
  mkdir -p "$dir/$plane"
  mv "$tmp/lib" "$dir/$plane/lib"  # rename is atomic: a half-gathered lib is never cached
  rm -rf "$tmp"
  log "gathered $plane ($(ls "$dir/$plane/lib" | wc -l) jars) in $((SECONDS - start))s"
}

for plane in "${planes[@]}"; do gather "$plane"; done
echo "$dir"
