#!/usr/bin/env bash
# CLI integration tests: the real workbot binary against a real store.
#   test_cli.sh GROUP    (basics | keygen | check | connections | rotate)
# Needs WORKBOT, SEED_STORE and SRCDIR in the environment (meson sets them).
set -u
group=${1:?group}
: "${WORKBOT:?}" "${SEED_STORE:?}" "${SRCDIR:?}"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
chmod 700 "$T"
pass=0 fail=0

ok()   { pass=$((pass + 1)); echo "ok - $*"; }
bad()  { fail=$((fail + 1)); echo "FAIL - $*"; }
# run CMD...: sets $rc, $out (stdout), $err (stderr)
run()  { "$@" >"$T/out" 2>"$T/err"; rc=$?; out=$(cat "$T/out"); err=$(cat "$T/err"); }
expect_rc()   { if [ "$rc" -eq "$1" ]; then ok "$2 (exit $rc)"; else bad "$2: exit $rc, want $1; stdout: $out; stderr: $err"; fi; }
expect_out()  { if grep -qF -- "$1" "$T/out"; then ok "$2"; else bad "$2: stdout lacks '$1': $out"; fi; }
expect_err()  { if grep -qF -- "$1" "$T/err"; then ok "$2"; else bad "$2: stderr lacks '$1': $err"; fi; }
expect_none() { if grep -rqF -- "$1" "$T/out" "$T/err"; then bad "$2: output contains '$1'"; else ok "$2"; fi; }

# Distinctive secrets: none may ever appear in any output.
export WB_APP_TOKEN="xapp-1-SECRETAPPTOKEN-7f3a9c"
export WB_BOT_TOKEN="xoxb-SECRETBOTTOKEN-1c2d3e"
export WB_CLIENT_SECRET="client-SECRET-9a8b7c ;#not-a-comment"
unset WORKBOT_CONF WORKBOT_LOG

write_conf() {
	cat >"$T/workbot.conf" <<CONF
# test config
[slack]
app_token = env:WB_APP_TOKEN
bot_token = env:WB_BOT_TOKEN
api_url = http://127.0.0.1:9/api/

[store]
path = $T/store
key_file = $T/master.key
map_size = 16MiB

[listener]
bind = 127.0.0.1:18085

[app salesforce]
title = Salesforce
auth = oauth2
client_id = workbot-test
client_secret = env:WB_CLIENT_SECRET
authorize_url = http://127.0.0.1:9/authorize
token_url = http://127.0.0.1:9/token
revoke_url = http://127.0.0.1:9/revoke
api_url = http://127.0.0.1:9

[app box]
title = Box
auth = oauth2
client_id = workbot-box
client_secret = env:WB_CLIENT_SECRET
authorize_url = http://127.0.0.1:9/box/authorize
token_url = http://127.0.0.1:9/box/token
api_url = http://127.0.0.1:9/box
CONF
	chmod 600 "$T/workbot.conf"
}

setup_store() {
	write_conf
	"$WORKBOT" keygen -o "$T/master.key" >/dev/null || bad "keygen for setup"
}

seed() { "$SEED_STORE" "$T/store" "$T/master.key" "$@" || bad "seed $*"; }

case "$group" in
basics)
	run "$WORKBOT" version
	expect_rc 0 "version"
	expect_out "workbot 0.1.0" "version names workbot"
	for lib in libwebsockets libcurl LMDB libsodium; do expect_out "$lib " "version names $lib"; done
	run "$WORKBOT" frobnicate
	expect_rc 2 "unknown command"
	expect_err "unknown command 'frobnicate'" "unknown command is named"
	[ "$(wc -l <"$T/err")" -eq 1 ] && ok "usage error is one line" || bad "usage error lines: $err"
	run "$WORKBOT" --help
	expect_rc 0 "--help"
	expect_out "workbot rotate-key --new-key FILE" "help lists commands"
	run "$WORKBOT" version --log-level nonsense
	expect_rc 2 "bad --log-level"
	run "$WORKBOT" check -c
	expect_rc 2 "-c without a value"
	run "$WORKBOT" keygen
	expect_rc 2 "keygen without -o"
	run "$WORKBOT" connections
	expect_rc 2 "connections without a subcommand"
	setup_store
	run "$WORKBOT" connect salesforce -c "$T/workbot.conf"
	expect_rc 2 "connect without --shared"
	run "$WORKBOT" connect nosuchapp --shared -c "$T/workbot.conf"
	expect_rc 2 "connect names an unknown app"
	# The default command is run, with $WORKBOT_CONF; a bad config exits 2 before anything starts.
	run env WORKBOT_CONF="$T/missing.conf" "$WORKBOT"
	expect_rc 2 "run with a missing config"
	expect_err "missing.conf" "the missing file is named"
	run "$WORKBOT" run extra -c "$T/workbot.conf"
	expect_rc 2 "run takes no arguments"
	sed -i 's/^bot_token = .*/bot_token = env:WB_UNSET_VARIABLE/' "$T/workbot.conf"
	run "$WORKBOT" run -c "$T/workbot.conf"
	expect_rc 2 "run with an unset env: secret"
	expect_err "WB_UNSET_VARIABLE" "the variable is named"
	expect_none "SECRET" "run prints no secret"
	;;
keygen)
	run "$WORKBOT" keygen -o "$T/k1"
	expect_rc 0 "keygen"
	mode=$(stat -c %a "$T/k1")
	[ "$mode" = 600 ] && ok "key file mode 0600" || bad "key file mode $mode"
	grep -qxE '[0-9a-f]{64}' "$T/k1" && [ "$(wc -c <"$T/k1")" -eq 65 ] && ok "64 hex chars + newline" || bad "key file content"
	cp "$T/k1" "$T/k1.copy"
	run "$WORKBOT" keygen -o "$T/k1"
	expect_rc 2 "keygen refuses to overwrite"
	cmp -s "$T/k1" "$T/k1.copy" && ok "existing key untouched" || bad "existing key changed"
	run "$WORKBOT" keygen -o "$T/k2"
	cmp -s "$T/k1" "$T/k2" && bad "two keys are equal" || ok "keys are random"
	run "$WORKBOT" keygen -o "$T/nodir/k"
	expect_rc 2 "keygen into a missing directory"
	;;
check)
	setup_store
	run "$WORKBOT" check -c "$T/workbot.conf"
	expect_rc 0 "check: good config, new store"
	expect_out "$T/workbot.conf: OK" "check prints FILE: OK"
	expect_none "SECRET" "check prints no secret"
	seed conn T1 U1 salesforce jane@acme.com at-SECRET-1 rt-SECRET-1
	run "$WORKBOT" check -c "$T/workbot.conf"
	expect_rc 0 "check: good config, existing store"
	# Config errors: every one reported, exit 2, no secret.
	cp "$T/workbot.conf" "$T/good.conf"
	sed -i 's/^connections.*//; s/^\[slack\]/[slack]\nconnections = 9\nbogus_key = 1/' "$T/workbot.conf"
	run "$WORKBOT" check -c "$T/workbot.conf"
	expect_rc 2 "check: bad config"
	expect_err "$T/workbot.conf:3: [slack] connections:" "connections out of range, with file:line"
	expect_err "$T/workbot.conf:4: [slack] bogus_key: unknown key" "unknown key, with file:line"
	expect_none "SECRET" "bad config prints no secret"
	cp "$T/good.conf" "$T/workbot.conf"
	# Inline secret in a group-readable config.
	sed -i 's/^bot_token = .*/bot_token = xoxb-INLINE-SECRET-555/' "$T/workbot.conf"
	chmod 640 "$T/workbot.conf"
	run "$WORKBOT" check -c "$T/workbot.conf"
	expect_rc 2 "check: group-readable config with an inline secret"
	expect_none "INLINE-SECRET" "inline secret not echoed"
	cp "$T/good.conf" "$T/workbot.conf"; chmod 600 "$T/workbot.conf"
	# Unset env: variable.
	run env -u WB_BOT_TOKEN "$WORKBOT" check -c "$T/workbot.conf"
	expect_rc 2 "check: unset env variable"
	expect_err "WB_BOT_TOKEN" "the unset variable is named"
	# Key file problems.
	chmod 644 "$T/master.key"
	run "$WORKBOT" check -c "$T/workbot.conf"
	expect_rc 2 "check: world-readable key file"
	expect_err "master.key" "key file named"
	chmod 600 "$T/master.key"
	mv "$T/master.key" "$T/right.key"
	"$WORKBOT" keygen -o "$T/master.key" >/dev/null
	run "$WORKBOT" check -c "$T/workbot.conf"
	expect_rc 2 "check: wrong key for the store"
	expect_err "does not match this store" "wrong key explained"
	mv "$T/right.key" "$T/master.key.old"
	run "$WORKBOT" check -c "$T/workbot.conf"
	expect_rc 2 "check: wrong key, .old matches"
	expect_err "master.key.old matches" "check names the matching key file"
	mv -f "$T/master.key.old" "$T/master.key"
	chmod 755 "$T/store"
	run "$WORKBOT" check -c "$T/workbot.conf"
	expect_rc 2 "check: store directory readable by others"
	chmod 700 "$T/store"
	run "$WORKBOT" check -c "$T/nonexistent.conf"
	expect_rc 2 "check: missing config file"
	# The example config passes when its variables are set.
	cp "$SRCDIR/workbot.conf.example" "$T/example.conf"
	sed -i "s#^path *=.*#path = $T/store#; s#^key_file *=.*#key_file = $T/master.key#" "$T/example.conf"
	run env SLACK_APP_TOKEN=xapp-1-x SLACK_BOT_TOKEN=xoxb-x SALESFORCE_CLIENT_SECRET=s JIRA_TOKEN=j \
		"$WORKBOT" check -c "$T/example.conf"
	expect_rc 0 "check: workbot.conf.example"
	;;
connections)
	setup_store
	C=(-c "$T/workbot.conf")
	run "$WORKBOT" connections list "${C[@]}"
	expect_rc 0 "list on an empty store"
	[ "$out" = "TEAM  USER  APP  ACCOUNT  STATE  CONNECTED  LAST_USED" ] && ok "empty list is the header only" || bad "empty list: '$out'"
	run "$WORKBOT" connections list --json "${C[@]}"
	[ "$out" = "[]" ] && ok "empty json list" || bad "empty json: '$out'"
	seed conn T1 U1 salesforce jane@acme.com at-SECRET-a1 rt-SECRET-a1
	seed conn T1 U1 box jane@box.example at-SECRET-a2 rt-SECRET-a2
	seed conn T1 U2 salesforce bob@acme.com at-SECRET-b1 rt-SECRET-b1 expired
	seed conn T2 U1 salesforce eve@other.example at-SECRET-c1 rt-SECRET-c1
	seed conn T1 '*shared*' salesforce admin@acme.com at-SECRET-s rt-SECRET-s
	seed touch T1 U1 salesforce 1767225600
	run "$WORKBOT" connections list "${C[@]}"
	expect_rc 0 "list"
	[ "$(wc -l <"$T/out")" -eq 6 ] && ok "header + 5 rows" || bad "list rows: $out"
	expect_out "2026-01-01T00:00:00Z" "last used in RFC 3339 UTC"
	grep -E '^T1 +U2 +salesforce +bob@acme.com +expired ' "$T/out" >/dev/null && ok "expired row" || bad "expired row: $out"
	grep -E '^T1 +U1 +box +jane@box.example +active +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +-$' "$T/out" >/dev/null \
		&& ok "row shape, unknown last used is -" || bad "row shape: $out"
	expect_none "SECRET" "list prints no token"
	run "$WORKBOT" connections list --user U1 "${C[@]}"
	[ "$(wc -l <"$T/out")" -eq 4 ] && ok "--user U1 matches both teams" || bad "--user U1: $out"
	run "$WORKBOT" connections list --user T1:U1 "${C[@]}"
	[ "$(wc -l <"$T/out")" -eq 3 ] && ok "--user T1:U1" || bad "--user T1:U1: $out"
	run "$WORKBOT" connections list --app box "${C[@]}"
	[ "$(wc -l <"$T/out")" -eq 2 ] && ok "--app box" || bad "--app box: $out"
	run "$WORKBOT" connections list --json --user 'T1:*shared*' "${C[@]}"
	python3 - "$T/out" <<'PY' && ok "json fields" || bad "json: $out"
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 1, rows
r = rows[0]
assert sorted(r) == ["account", "app", "connected", "last_used", "state", "team", "user"], r
assert r["user"] == "*shared*" and r["account"] == "admin@acme.com" and r["state"] == "active", r
assert r["last_used"] is None and r["connected"].endswith("Z"), r
PY
	run "$WORKBOT" connections list --user "" "${C[@]}"
	expect_rc 2 "--user empty"
	# revoke
	run "$WORKBOT" connections revoke --user T1:U1 "${C[@]}"
	expect_rc 2 "revoke --user without --app"
	run "$WORKBOT" connections revoke --user T1:U1 --app salesforce "${C[@]}"
	expect_rc 0 "revoke one"
	[ "$(wc -l <"$T/out")" -eq 1 ] && ok "one line per revoked connection" || bad "revoke output: $out"
	expect_out "revoked T1 U1 salesforce" "revoke names the connection"
	run "$SEED_STORE" "$T/store" "$T/master.key" get T1 U1 salesforce
	[ "$out" = none ] && ok "revoked connection is gone" || bad "still there: $out"
	run "$SEED_STORE" "$T/store" "$T/master.key" get T1 U1 box
	expect_out "jane@box.example active at-SECRET-a2" "other connection of the user untouched"
	run "$WORKBOT" connections revoke --user T1:U1 --app salesforce "${C[@]}"
	expect_rc 1 "revoke of nothing exits 1"
	run "$WORKBOT" connections revoke --all-for-app salesforce "${C[@]}"
	expect_rc 0 "revoke --all-for-app"
	[ "$(wc -l <"$T/out")" -eq 3 ] && ok "three salesforce connections revoked" || bad "all-for-app: $out"
	run "$WORKBOT" connections revoke --all-for-user U1 "${C[@]}"
	expect_rc 0 "revoke --all-for-user"
	run "$WORKBOT" connections list "${C[@]}"
	[ "$(wc -l <"$T/out")" -eq 1 ] && ok "store empty after revokes" || bad "left: $out"
	run "$SEED_STORE" "$T/store" "$T/master.key" audit
	[ "$(grep -c '^revoked ' "$T/out")" -eq 5 ] && ok "five audit entries" || bad "audit: $out"
	expect_none "SECRET" "audit holds no token"
	# The LMDB files hold no token bytes.
	if grep -aqF "SECRET" "$T/store/data.mdb"; then bad "token bytes in data.mdb"; else ok "no token bytes in data.mdb"; fi
	;;
rotate)
	setup_store
	C=(-c "$T/workbot.conf")
	seed conn T1 U1 salesforce jane@acme.com at-SECRET-r1 rt-SECRET-r1
	seed conn T1 U2 box bob@acme.com at-SECRET-r2 rt-SECRET-r2
	seed pending p1 600 pending-body
	cp "$T/master.key" "$T/original.key"
	"$WORKBOT" keygen -o "$T/new.key" >/dev/null
	cp "$T/new.key" "$T/new.copy"
	# Refused while a daemon holds the store.
	"$SEED_STORE" "$T/store" - hold-lock 5 >"$T/lock.out" &
	lockpid=$!
	for _ in $(seq 50); do grep -q locked "$T/lock.out" 2>/dev/null && break; sleep 0.1; done
	run "$WORKBOT" rotate-key --new-key "$T/new.key" "${C[@]}"
	expect_rc 1 "rotate-key refused while the daemon lock is held"
	cmp -s "$T/master.key" "$T/original.key" && ok "key file untouched after refusal" || bad "key changed"
	kill "$lockpid" 2>/dev/null; wait "$lockpid" 2>/dev/null
	run "$WORKBOT" rotate-key --new-key "$T/new.key" "${C[@]}"
	expect_rc 0 "rotate-key"
	cmp -s "$T/master.key" "$T/new.copy" && ok "new key is now key_file" || bad "key_file is not the new key"
	cmp -s "$T/master.key.old" "$T/original.key" && ok "old key kept as key_file.old" || bad "key_file.old"
	run "$SEED_STORE" "$T/store" "$T/master.key" get T1 U1 salesforce
	expect_out "jane@acme.com active at-SECRET-r1 rt-SECRET-r1" "records open under the new key"
	run "$SEED_STORE" "$T/store" "$T/master.key.old" get T1 U1 salesforce
	expect_rc 1 "the old key no longer opens the store"
	expect_err "does not match this store" "old key refused with the key-id message"
	run "$WORKBOT" check "${C[@]}"
	expect_rc 0 "check after rotation"
	run "$WORKBOT" connections list "${C[@]}"
	[ "$(wc -l <"$T/out")" -eq 3 ] && ok "list after rotation" || bad "list after rotation: $out"
	run "$WORKBOT" rotate-key "${C[@]}"
	expect_rc 2 "rotate-key without --new-key"
	;;
*)
	echo "unknown group $group"; exit 2 ;;
esac

echo "# $group: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
