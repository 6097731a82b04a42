#!/usr/bin/env bash
# Keycloak, a second real OpenID Connect provider for the end-to-end tests (tests/e2e/src/keycloak.rs):
# the server distribution org.keycloak:keycloak-quarkus-dist, pinned below, fetched once from Maven
# Central with Maven (through the machine's configured mirror), checked against Maven's .sha1 file,
# and unpacked into ~/.cache/trellis/keycloak-<version>/. Keycloak 26 needs Java 21 or newer; the
# JDK found is written to <home>/.trellis-java-home. Prints the server's home directory:
#   home=$(tests/keycloak/setup.sh)   # then: JAVA_HOME=$(cat $home/.trellis-java-home) $home/bin/kc.sh …
set -euo pipefail
version=26.5.6
artifact=org.keycloak:keycloak-quarkus-dist:$version:zip
cache=${TRELLIS_CACHE_DIR:-$HOME/.cache/trellis}
home=$cache/keycloak-$version
if [ -x "$home/bin/kc.sh" ] && [ -s "$home/.trellis-java-home" ]; then
  echo "$home"
  exit 0
fi

# A Java of 21 or newer: $KEYCLOAK_JAVA_HOME, a Temurin JDK, or the java on PATH.
java_home=
for candidate in "${KEYCLOAK_JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-21-jdk-amd64 \
  "$(dirname "$(dirname "$(readlink -f "$(command -v java || echo /nonexistent)")")")"; do
  [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] || continue
  major=$("$candidate/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  if [ "${major:-0}" -ge 21 ]; then java_home=$candidate; break; fi
done
if [ -z "$java_home" ]; then
  echo "keycloak setup: Keycloak $version needs Java 21 or newer; none found (set KEYCLOAK_JAVA_HOME)" >&2
  exit 1
fi

repo=${MAVEN_LOCAL_REPO:-$HOME/.m2/repository}
zip=$repo/org/keycloak/keycloak-quarkus-dist/$version/keycloak-quarkus-dist-$version.zip
if [ ! -s "$zip" ] || [ ! -s "$zip.sha1" ]; then
  echo "keycloak setup: fetching $artifact with Maven" >&2
  mvn -q -B -Dstyle.color=never dependency:get -Dartifact="$artifact" -Dtransitive=false -Dmaven.repo.local="$repo" >&2
fi
expected=$(tr -d ' \n\r' < "$zip.sha1" | cut -c1-40)
actual=$(sha1sum "$zip" | cut -d' ' -f1)
if [ "$expected" != "$actual" ]; then
  echo "keycloak setup: $zip has SHA-1 $actual, Maven's .sha1 says $expected; removing it" >&2
  rm -f "$zip" "$zip.sha1"
  exit 1
fi

mkdir -p "$cache"
unpack=$(mktemp -d "$cache/.keycloak-$version.XXXXXX")
trap 'rm -rf "$unpack"' EXIT
unzip -q "$zip" -d "$unpack"
echo "$java_home" > "$unpack/keycloak-$version/.trellis-java-home"
rm -rf "$home"
mv "$unpack/keycloak-$version" "$home"
echo "keycloak setup: Keycloak $version in $home (Java: $java_home)" >&2
echo "$home"
