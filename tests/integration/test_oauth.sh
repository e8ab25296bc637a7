#!/usr/bin/env bash
# OAuth integration tests: the real workbot against the fake Slack and the
# fake OAuth provider on 127.0.0.1, with curl as the browser (cookie jar).
#   test_oauth.sh GROUP   (shared_standalone | shared_daemon | pages)
# Needs WORKBOT, FAKE_SLACK, FAKE_OAUTH in the environment (meson sets them).
set -u
group=${1:?group}
PREFIX=DISTINCTIVEtok9q
WB_SF_SECRET="sf-Secret-77 ;#x"
. "$(dirname "$0")/lib_oauth.sh"
fake_app admin@acme.com
write_conf

wait_link() { grep -q "/oauth/start/" "$T/connect.out"; }
no_leak() { # no_leak FILE... : none holds a token, the secret or a code
	if grep -aqE "$PREFIX|sf-Secret-77|xoxb-0001-fake|xapp-1-A0FAKEAPP01" "$@" 2>/dev/null; then bad "secret found in $*"; else ok "no secret in $(basename -a "$@" | tr '\n' ' ')"; fi
}
login_shared() { # the admin's browser: start link -> provider -> callback -> confirm page -> Connect
	poll 100 wait_link || { bad "no link printed: $(cat "$T/connect.out" "$T/connect.err")"; return; }
	link=$(grep -o 'http://127.0.0.1:[0-9]*/oauth/start/[A-Za-z0-9_-]*' "$T/connect.out")
	for i in 1 2 3; do curl -s -o /dev/null "$link"; done	# link previews: harmless
	check "start link + provider + callback answers the confirm page" "$(browse "$link")" 200
	grep -q 'shared connection used by every recipe without personal access' "$T/page" && ok "confirm page names the shared use" || bad "confirm page: $(head -c 400 "$T/page")"
	grep -q 'admin@acme.com' "$T/page" && ok "confirm page names the provider account" || bad "account not on page"
	grep -qi '^cache-control: no-store' "$T/headers" && grep -qi "^content-security-policy: default-src 'none'" "$T/headers" \
		&& grep -qi '^x-frame-options: DENY' "$T/headers" && grep -qi '^referrer-policy: no-referrer' "$T/headers" \
		&& ok "security headers on the confirm page" || bad "headers: $(cat "$T/headers")"
	check "Connect" "$(confirm connect)" 200
	grep -qi 'connected' "$T/page2" && ok "connected page" || bad "connected page: $(head -c 300 "$T/page2")"
}

case "$group" in
shared_standalone)
	"$WORKBOT" connect salesforce --shared -c "$T/workbot.conf" >"$T/connect.out" 2>"$T/connect.err" & CPID=$!
	login_shared
	for ((i = 0; i < 100; i++)); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
	wait "$CPID"; rc=$?; CPID=
	check "connect --shared (no daemon) exits 0" "$rc" 0
	grep -q 'Connected' "$T/connect.out" && ok "connect says Connected" || bad "connect out: $(cat "$T/connect.out")"
	out=$("$WORKBOT" connections list --user 'T0001:*shared*' -c "$T/workbot.conf")
	echo "$out" | grep -qE '^T0001 +\*shared\* +salesforce +admin@acme.com +active' && ok "shared connection stored" || bad "list: $out"
	no_leak "$T/store/data.mdb" "$T/connect.out" "$T/connect.err" "$T/page" "$T/page2"
	# Revoke from the CLI: the provider sees the refresh token revoked.
	out=$("$WORKBOT" connections revoke --user 'T0001:*shared*' --app salesforce -c "$T/workbot.conf")
	echo "$out" | grep -q 'revoked at the provider' && ok "CLI revoke revokes at the provider" || bad "revoke: $out"
	r=$(curl -s "$FO/_control/revocations")
	echo "$r" | grep -q '"grant_ended":true' && ok "provider ended the grant" || bad "revocations: $r"
	;;
shared_daemon)
	"$WORKBOT" run -c "$T/workbot.conf" 2>"$T/workbot.log" & WPID=$!
	poll 100 live || bad "daemon not live"
	"$WORKBOT" connect salesforce --shared -c "$T/workbot.conf" >"$T/connect.out" 2>"$T/connect.err" & CPID=$!
	login_shared
	for ((i = 0; i < 100; i++)); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
	wait "$CPID"; rc=$?; CPID=
	check "connect --shared (daemon serves) exits 0" "$rc" 0
	grep -q 'A running workbot serves the login' "$T/connect.err" && ok "the daemon served the login" || bad "connect err: $(cat "$T/connect.err")"
	out=$("$WORKBOT" connections list --json -c "$T/workbot.conf")
	echo "$out" | grep -qE '"account":[[:space:]]*"admin@acme.com"' && ok "stored through the daemon" || bad "list: $out"
	no_leak "$T/workbot.log" "$T/store/data.mdb" "$T/page" "$T/page2"
	kill -TERM "$WPID"; wait "$WPID"; check "daemon exits 0" "$?" 0; WPID=
	;;
pages)
	"$WORKBOT" run -c "$T/workbot.conf" 2>"$T/workbot.log" & WPID=$!
	poll 100 live || bad "daemon not live"
	code() { curl -s -o "$T/page" -D "$T/headers" -w '%{http_code}' "$@"; }
	c=$(code "http://127.0.0.1:$LP/oauth/start/unknownid123")
	[ "${c:0:1}" = 4 ] && ok "unknown start link: $c" || bad "unknown start link answered $c"
	c=$(code "http://127.0.0.1:$LP/oauth/callback?code=abc&state=def")
	[ "${c:0:1}" = 4 ] && ok "callback without the login cookie: $c" || bad "callback without cookie answered $c"
	grep -q 'abc\|def' "$T/page" && bad "page echoes request values" || ok "failure page echoes nothing"
	c=$(code -X POST -d 'id=x&form_token=y&action=connect' "http://127.0.0.1:$LP/oauth/confirm")
	[ "${c:0:1}" = 4 ] && ok "forged confirm refused: $c" || bad "forged confirm answered $c"
	check "GET on /oauth/confirm is 405" "$(code "http://127.0.0.1:$LP/oauth/confirm")" 405
	kill -TERM "$WPID"; wait "$WPID"; WPID=
	;;
*) echo "unknown group $group"; exit 2 ;;
esac
[ "$fail" -gt 0 ] && { echo "--- logs"; tail -20 "$T/workbot.log" "$T/connect.err" 2>/dev/null; }
echo "# $group: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
