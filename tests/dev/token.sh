#!/usr/bin/env bash
# Prints a demo user's bearer access token from the dev Dex (tests/dev/dex.yaml), and nothing else
# on stdout: `curl -H "Authorization: Bearer $(tests/dev/token.sh alice)" ...`.
# Uses the OAuth2 password grant as the client `trellis`; each demo user's password is
# "<user>-password". USER is a username (alice) or an email (alice@trellis.example).
# TRELLIS_DEX_ISSUER overrides the issuer (default http://127.0.0.1:5556/dex).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
config=$repo/tests/dev/dex.yaml
issuer=${TRELLIS_DEX_ISSUER:-http://127.0.0.1:5556/dex}

users=$(sed -n 's/^ *- email: *\([^@]*\)@trellis\.example *$/\1/p' "$config" | tr '\n' ' ')
user=${1:-}
if [ -z "$user" ]; then
  echo "usage: $0 USER   (one of: ${users% })" >&2
  exit 2
fi
name=${user%@trellis.example}
if [[ " $users" != *" $name "* ]]; then
  echo "token: no demo user '$user' in tests/dev/dex.yaml (known: ${users% })" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! status=$(curl -sS --max-time 10 -o "$tmp/body" -w '%{http_code}' -u trellis:trellis-dev-secret \
    --data-urlencode grant_type=password \
    --data-urlencode "username=$name@trellis.example" \
    --data-urlencode "password=$name-password" \
    --data-urlencode "scope=openid profile email groups" \
    "$issuer/token" 2>"$tmp/err"); then
  echo "token: cannot reach Dex at $issuer: $(sed 's/^curl: ([0-9]*) //' "$tmp/err")" >&2
  echo "       Is it running? Start it with: target/cluster/bin/dex serve tests/dev/dex.yaml" >&2
  echo "       (tests/cluster/build-tools.sh dex builds it)" >&2
  exit 1
fi
body=$(cat "$tmp/body")
token=$(printf '%s' "$body" | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
if [ "$status" != 200 ] || [ -z "$token" ]; then
  echo "token: Dex at $issuer refused the password grant for $name (HTTP $status): $body" >&2
  exit 1
fi
printf '%s\n' "$token"
