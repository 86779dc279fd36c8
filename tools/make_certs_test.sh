#!/usr/bin/env bash
# Checks tools/make-certs with the openssl command: a CA and two nodes whose
# certificates verify for TLS server and client use and name their node; bad
# names and a second CA refused; rotation; and a certificate of another CA
# that does not verify against the first.
#
#   make_certs_test.sh <path of make-certs>
set -euo pipefail
make_certs="$1"
dir="${TEST_TMPDIR:-$(mktemp -d)}/certs"
other="${TEST_TMPDIR:-$(mktemp -d)}/other"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Runs make-certs, expecting it to fail with a message containing $1.
expect_refusal() {
  local want="$1" out rc=0
  shift
  out="$("$make_certs" "$@" 2>&1)" || rc=$?
  (( rc != 0 )) || fail "make-certs $* succeeded; expected a refusal"
  [[ "$out" == *"$want"* ]] || fail "make-certs $* said '$out'; expected it to mention '$want'"
}

verifies() {  # verifies CA_FILE CERT PURPOSE
  openssl verify -CAfile "$1" -purpose "$3" "$2" >/dev/null 2>&1
}

san_of() {
  openssl x509 -in "$1" -noout -ext subjectAltName | sed -n 's/^ *//; /^DNS:/p'
}

mode_of() { stat -c %a "$1"; }

[[ "$("$make_certs" --help)" == *"--tls_cert DIR/NAME.pem"* ]] || fail "--help does not explain --tls_cert"

"$make_certs" ca "$dir" >/dev/null
[[ -f "$dir/ca.pem" && "$(mode_of "$dir/ca.key")" == 600 ]] || fail "ca.pem missing or ca.key not mode 600"
expect_refusal "already holds a CA" ca "$dir"
"$make_certs" node "$dir" node-a node_b.2 >/dev/null

for name in node-a node_b.2; do
  [[ "$(mode_of "$dir/$name.key")" == 600 ]] || fail "$name.key is not mode 600"
  verifies "$dir/ca.pem" "$dir/$name.pem" sslserver || fail "$name.pem does not verify as a TLS server"
  verifies "$dir/ca.pem" "$dir/$name.pem" sslclient || fail "$name.pem does not verify as a TLS client"
  [[ "$(san_of "$dir/$name.pem")" == "DNS:$name" ]] ||
    fail "$name.pem has subjectAltName '$(san_of "$dir/$name.pem")'"
  # The key is the certificate's: the same public key.
  [[ "$(openssl pkey -in "$dir/$name.key" -pubout)" == "$(openssl x509 -in "$dir/$name.pem" -noout -pubkey)" ]] ||
    fail "$name.key does not belong to $name.pem"
  [[ "$(grep -c 'BEGIN CERTIFICATE' "$dir/$name.pem")" == 1 ]] || fail "$name.pem holds more than the leaf"
done
[[ "$("$make_certs" show "$dir/node-a.pem")" == *"DNS:node-a"* ]] || fail "show does not print the SAN"

# Names.
expect_refusal "character other than" node "$dir" "bad/name"
expect_refusal "character other than" node "$dir" "node a"
expect_refusal "empty" node "$dir" ""
expect_refusal "256 characters" node "$dir" "$(printf 'n%.0s' {1..256})"
expect_refusal "no CA" node "$other" node-a
[[ ! -e "$dir/node a.pem" ]] || fail "a refused name left a file"

# Serials differ; rotating a node gives it a new key and certificate that
# still verify.
serial() { openssl x509 -in "$1" -noout -serial; }
[[ "$(serial "$dir/node-a.pem")" != "$(serial "$dir/node_b.2.pem")" ]] || fail "two nodes share a serial"
old_serial="$(serial "$dir/node-a.pem")"
old_key="$(cat "$dir/node-a.key")"
"$make_certs" node "$dir" node-a --days 30 >/dev/null
[[ "$(serial "$dir/node-a.pem")" != "$old_serial" && "$(cat "$dir/node-a.key")" != "$old_key" ]] ||
  fail "rotating node-a kept its serial or key"
verifies "$dir/ca.pem" "$dir/node-a.pem" sslserver || fail "rotated node-a.pem does not verify"
openssl x509 -in "$dir/node-a.pem" -noout -checkend $((29 * 86400)) >/dev/null ||
  fail "--days 30 made a certificate that ends within 29 days"
openssl x509 -in "$dir/node-a.pem" -noout -checkend $((31 * 86400)) >/dev/null &&
  fail "--days 30 made a certificate valid past 31 days"
[[ -z "$(find "$dir" -name '.make-certs.*')" ]] || fail "temp files were left in $dir"

# Another CA's node does not verify against the first CA, though both CAs
# have the same (default) name.
"$make_certs" ca "$other" >/dev/null
"$make_certs" node "$other" node-a >/dev/null
verifies "$other/ca.pem" "$other/node-a.pem" sslserver || fail "the other CA's node-a does not verify against its own CA"
verifies "$dir/ca.pem" "$other/node-a.pem" sslserver && fail "the other CA's node-a verifies against the first CA"
verifies "$dir/ca.pem" "$other/node-a.pem" sslclient && fail "the other CA's node-a verifies as a client against the first CA"

# --force replaces a CA; --subject names it.
"$make_certs" ca "$dir" --force --subject "/CN=renewed CA" >/dev/null
[[ "$(openssl x509 -in "$dir/ca.pem" -noout -subject)" == "subject=CN = renewed CA" ]] ||
  fail "--subject was not the new CA's subject"
verifies "$dir/ca.pem" "$dir/node_b.2.pem" sslserver && fail "node_b.2 still verifies against the replaced CA"

echo "PASS"
