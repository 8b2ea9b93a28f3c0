#!/usr/bin/env bash
# Fetches the Keycloak server distribution from Maven Central into a cache outside the
# repository keyed by version, unzips it there and runs its Quarkus build once, so that a test
# starts it with `kc.sh start --optimized` and never rewrites the shared directory.
#   tests/oidc/build.sh          fetch and build what is missing, print the Keycloak home last
#   tests/oidc/build.sh --print  print the Keycloak home without fetching
#   tests/oidc/build.sh --java   print the JAVA_HOME that Keycloak runs on (Java 21 or newer)
set -euo pipefail
version=${KEYCLOAK_VERSION:-26.5.6}
cache=${CONNECTOR_KEYCLOAK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/connector-operator/keycloak}
dir="$cache/$version"
home="$dir/keycloak-$version"
# Build-time options: changing them here builds the cached distribution again (see `build`).
# An in-memory database keeps parallel test instances apart and leaves nothing behind.
build_options=(--db=dev-mem --health-enabled=false --metrics-enabled=false)
min_java=21

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

java_major() { # JAVA_HOME -> its major version, from the release file every JDK ships
  sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null | head -n1
}

find_java() { # -> a JAVA_HOME of Java $min_java or newer: $JAVA_HOME if it is one, else the newest
  local candidate best="" best_major=0 major
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/*; do
    [[ -n "$candidate" && -x "$candidate/bin/java" ]] || continue
    major=$(java_major "$candidate")
    if [[ "$candidate" == "${JAVA_HOME:-}" && "${major:-0}" -ge $min_java ]]; then
      echo "$candidate"; return 0
    fi
    if [[ "${major:-0}" -gt $best_major ]]; then best=$candidate best_major=$major; fi
  done
  if [[ $best_major -lt $min_java ]]; then
    log "Keycloak $version needs Java $min_java or newer; none found (JAVA_HOME, /usr/lib/jvm)"
    return 1
  fi
  echo "$best"
}

case "${1:-}" in
  --print) echo "$home"; exit 0 ;;
  --java) find_java; exit 0 ;;
esac

java_home=$(find_java)
mkdir -p "$cache"
# Test workers may start at once on a cold cache: one fetches, the others wait and find it done.
exec 9>"$cache/.lock"
flock 9

fetch() {
  if [[ -x "$home/bin/kc.sh" ]]; then return 0; fi
  log "fetching Keycloak $version from Maven Central (~165 MB)"
  local start=$SECONDS tmp; mkdir -p "$dir"; tmp=$(mktemp -d "$dir/.tmp.XXXXXX")
  # Maven's output goes to stderr, the last stdout line being the path; Maven 3.8 writes
  # colour resets even in batch mode, which sed strips.
  mvn -B -ntp -q -Dmaven.repo.local="$cache/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:$version:zip" -DoutputDirectory="$tmp" 2>&1 \
    | sed 's/\x1b\[[0-9;]*m//g' >&2 || { rm -rf "$tmp"; return 1; }
  log "fetched in $((SECONDS - start))s; unzipping"
  unzip -q "$tmp/keycloak-quarkus-dist-$version.zip" -d "$tmp" || { rm -rf "$tmp"; return 1; }
  mv "$tmp/keycloak-$version" "$home"  # rename is atomic: a half-unzipped home is never cached
  rm -rf "$tmp" "$cache/m2/org/keycloak"  # the unzipped home is the cache; the zip is not kept
  log "Keycloak $version is in $home ($((SECONDS - start))s)"
}

build() { # Quarkus's augmentation, which `start` would otherwise redo in the shared home
  local stamp="$home/.built-with" wanted="${build_options[*]}"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then return 0; fi
  log "building Keycloak ($wanted) on $java_home"
  local start=$SECONDS
  rm -f "$stamp"
  JAVA_HOME="$java_home" "$home/bin/kc.sh" build "${build_options[@]}" >&2
  echo "$wanted" >"$stamp"
  log "built in $((SECONDS - start))s"
}

fetch
build
echo "$home"
