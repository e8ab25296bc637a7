#!/usr/bin/env bash
# TLS integration test: the real `workbot run` against the fake Slack in TLS
# mode (one port on 127.0.0.1 serving HTTPS and WSS) with a throwaway CA made
# here by openssl. What it proves:
#   * with `[slack] ca_file` = the test CA: auth.test and apps.connections.open
#     over https (libcurl CAINFO), wss:// sockets live (lws
#     client_ssl_ca_filepath) for an IP-literal host (IP SAN) and for
#     `localhost` (DNS SAN), envelopes acked, a reply posted over https;
#   * without ca_file, and with another CA: auth.test fails with a
#     certificate error, is retried a bounded number of times, exit 1, no
#     socket ever opened;
#   * https fine but the wss host missing from the certificate: sockets never
#     go live, apps.connections.open is called with backoff (no storm), the
#     daemon stays up and stops cleanly;
#   * `workbot check` refuses a ca_file that does not exist, naming file:line.
# Needs WORKBOT and FAKE_SLACK (meson sets them). Every wait is bounded.
set -u
: "${WORKBOT:?}" "${FAKE_SLACK:?}"
command -v openssl >/dev/null || { echo "openssl not installed"; exit 77; }

T=$(mktemp -d)
chmod 700 "$T"
APP=xapp-1-A0FAKEAPP01-1-fake
BOT=xoxb-0001-fake
export WB_APP_TOKEN=$APP WB_BOT_TOKEN=$BOT
FPIDS=() WPIDS=()
pass=0 fail=0

cleanup() {
	local p
	for p in "${WPIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${FPIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

ok()  { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }
jget() { python3 -c 'import json,sys
d = json.loads(sys.argv[1]); v = eval(sys.argv[2], {"d": d})
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1" "$2" 2>/dev/null || echo JGET-ERROR; }
# poll TENTHS CMD...: until CMD succeeds; bounded by the clock, not by a count
# of tries (a loaded machine makes each try slow)
now_ds() { local t=${EPOCHREALTIME/./}; echo $((t / 100000)); }
poll() { local end=$(($(now_ds) + $1)); shift; while :; do "$@" && return 0; [ "$(now_ds)" -lt "$end" ] || return 1; sleep 0.1; done; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# ---- a throwaway PKI ------------------------------------------------------
# ca: the test CA. srv: SAN IP:127.0.0.1 + DNS:localhost. iponly: SAN
# IP:127.0.0.1 only (its CN is not a host name: with no DNS SAN OpenSSL would
# fall back to the CN). other: an unrelated CA.
pki() {
	local o=$T/pki
	mkdir -p "$o"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=workbot-test-ca \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$o/ca.key" -out "$o/ca.pem" &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=workbot-other-ca \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$o/other.key" -out "$o/other.pem" || return 1
	local name san
	for name in srv iponly; do
		[ $name = srv ] && san="IP:127.0.0.1,DNS:localhost" || san="IP:127.0.0.1"
		printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' \
			"$san" >"$o/$name.ext"
		openssl req -newkey rsa:2048 -nodes -subj "/CN=workbot test server $name" \
			-keyout "$o/$name.key" -out "$o/$name.csr" &&
		openssl x509 -req -in "$o/$name.csr" -CA "$o/ca.pem" -CAkey "$o/ca.key" \
			-CAcreateserial -days 2 -extfile "$o/$name.ext" -out "$o/$name.pem" || return 1
	done
}
pki >"$T/pki.log" 2>&1 || { cat "$T/pki.log"; echo "FAIL - openssl could not make the test PKI"; exit 1; }
CA=$T/pki/ca.pem

# start_fake NAME CERT -> $FP (port); control API over https with the test CA
start_fake() {
	"$FAKE_SLACK" --port 0 --tls-cert "$T/pki/$2.pem" --tls-key "$T/pki/$2.key" \
		>"$T/$1.out" 2>"$T/$1.err" &
	FPIDS+=($!)
	poll 50 grep -q '^PORT ' "$T/$1.out" || { bad "fake slack ($1) did not start: $(cat "$T/$1.err")"; exit 1; }
	FP=$(awk '/^PORT /{print $2}' "$T/$1.out")
}
# ctl PORT NAME [curl args], cget PORT NAME
ctl()  { curl -s -m 5 --cacert "$CA" -X POST "https://127.0.0.1:$1/_control/$2" "${@:3}"; }
cget() { curl -s -m 5 --cacert "$CA" "https://127.0.0.1:$1/_control/$2"; }
fstat() { jget "$(cget "$1" stats)" "d['$2']"; }

# write_conf DIR FAKEPORT LISTENPORT [extra [slack] lines]
write_conf() {
	mkdir -p "$1"
	cat >"$1/workbot.conf" <<CONF
[slack]
app_token = env:WB_APP_TOKEN
bot_token = env:WB_BOT_TOKEN
api_url = https://127.0.0.1:$2/api/
connections = 2
workers = 2
ping_interval = 1
${4:-}

[store]
path = $1/store
key_file = $T/master.key
map_size = 16MiB

[listener]
bind = 127.0.0.1:$3
CONF
}
"$WORKBOT" keygen -o "$T/master.key" >/dev/null || { echo "FAIL - keygen"; exit 1; }

# start_workbot DIR -> $WPID
start_workbot() {
	"$WORKBOT" run -c "$1/workbot.conf" --log-level debug 2>>"$1/workbot.log" &
	WPID=$!
	WPIDS+=($WPID)
}
healthz() { curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/healthz"; }
live_count() { local n; n=$(curl -s -m 2 "http://127.0.0.1:$1/healthz" | grep -o '"sockets_live": *[0-9]*' | grep -o '[0-9]*$'); echo "${n:-0}"; }
live_ge() { [ "$(live_count "$1")" -ge "$2" ]; }
# wait_exit PID TENTHS -> $exit_rc (255 = still running)
not_running() { ! kill -0 "$1" 2>/dev/null; }
wait_exit() {
	if ! poll "$2" not_running "$1"; then exit_rc=255; return 1; fi
	wait "$1"; exit_rc=$?
}
stop_workbot() { kill -TERM "$1"; wait_exit "$1" 150; }
push() { # push PORT TYPE [params...] -> envelope id
	local p=$1 a args=(--data-urlencode "type=$2"); shift 2
	for a in "$@"; do args+=(--data-urlencode "$a"); done
	{ ctl "$p" push "${args[@]}"; echo; } | head -1 | sed -n 's/.*"envelope_id":"\([^"]*\)".*/\1/p;t;s/.*/NONE/p'
}
acked_ge() { [ "$(cget "$1" "acks?envelope_id=$2" | grep -o '"seq":' | wc -l)" -ge 1 ]; }
called_ok() { [ "$(jget "$(cget "$1" "calls?method=$2")" "len([c for c in d['calls'] if c['ok']])")" -ge 1 ]; }

# ---- 1. the fake itself speaks TLS ------------------------------------------
start_fake fake srv
A=$FP
check "fake: control API over https with the test CA" "$(jget "$(cget "$A" health)" "d['ok']")" true
curl -s -m 5 -o /dev/null "https://127.0.0.1:$A/_control/health"; rc=$?
check "fake: curl without the CA refuses the certificate (60)" "$rc" 60
u=$(curl -s -m 5 --cacert "$CA" -X POST -H "Authorization: Bearer $APP" "https://127.0.0.1:$A/api/apps.connections.open")
case "$(jget "$u" "d['url']")" in
"wss://127.0.0.1:$A/link/?ticket="*) ok "fake: apps.connections.open answers wss://127.0.0.1:$A/link/" ;;
*) bad "fake: socket URL: $u" ;;
esac
ctl "$A" reset >/dev/null

# ---- 2. ca_file = the test CA: everything over TLS ---------------------------
W=$T/good LP=$(free_port)
write_conf "$W" "$A" "$LP" "ca_file = $CA"
"$WORKBOT" check -c "$W/workbot.conf" >"$T/check.out" 2>&1 \
	&& ok "workbot check accepts ca_file" || bad "workbot check: $(cat "$T/check.out")"
start_workbot "$W"
check "ca_file: auth.test answered ok over https" "$(poll 100 called_ok "$A" auth.test && echo yes)" yes
if poll 150 live_ge "$LP" 2; then
	ok "ca_file: two wss sockets live"
	check "ca_file: /healthz 200" "$(healthz "$LP")" 200
	check "fake: two WebSockets said hello over TLS" "$(fstat "$A" hellos_sent)" 2
	e=$(push "$A" message_im user=U0001 text=help event_id=EvTLS1)
	poll 50 acked_ge "$A" "$e" && ok "ca_file: envelope $e acked over wss" || bad "ca_file: envelope $e not acked"
	poll 100 called_ok "$A" chat.postMessage && ok "ca_file: help reply posted over https (worker libcurl)" \
		|| bad "ca_file: no chat.postMessage: $(grep -i 'postMessage\|call failed' "$W/workbot.log" | tail -3)"
else
	bad "ca_file: not live (envelope checks skipped): $(grep -E ' (error|warn) ' "$W/workbot.log" | tail -4)"
fi
stop_workbot "$WPID"; check "ca_file: SIGTERM exit status" "$exit_rc" 0

# The DNS SAN path: wss://localhost (workbot resolves it, lws checks the name).
ctl "$A" reset >/dev/null
ctl "$A" config -H 'Content-Type: application/json' -d '{"ws_host":"localhost"}' >/dev/null
u=$(curl -s -m 5 --cacert "$CA" -X POST -H "Authorization: Bearer $APP" "https://127.0.0.1:$A/api/apps.connections.open")
case "$(jget "$u" "d['url']")" in
"wss://localhost:$A/"*) ok "fake: ws_host=localhost gives wss://localhost URLs" ;;
*) bad "fake: ws_host: $u" ;;
esac
ctl "$A" reset >/dev/null
ctl "$A" config -H 'Content-Type: application/json' -d '{"ws_host":"localhost"}' >/dev/null
start_workbot "$W"
if poll 150 live_ge "$LP" 2; then
	ok "wss://localhost: two sockets live (DNS SAN)"
	e=$(push "$A" message_im user=U0001 text=hi event_id=EvTLS2)
	poll 50 acked_ge "$A" "$e" && ok "wss://localhost: envelope acked" || bad "wss://localhost: envelope $e not acked"
else
	bad "wss://localhost: not live: $(grep -E ' (error|warn) ' "$W/workbot.log" | tail -4)"
fi
stop_workbot "$WPID"; check "wss://localhost: SIGTERM exit status" "$exit_rc" 0
ctl "$A" reset >/dev/null

# ---- 3. no ca_file / another CA: auth.test refused, bounded, exit 1 ---------
# Both run at once (auth.test backs off 1 s..16 s between its attempts).
N=$T/noca NLP=$(free_port)
write_conf "$N" "$A" "$NLP"
O=$T/otherca OLP=$(free_port)
write_conf "$O" "$A" "$OLP" "ca_file = $T/pki/other.pem"
start_workbot "$N"; NPID=$WPID
start_workbot "$O"; OPID=$WPID
wait_exit "$NPID" 300; check "no ca_file: exits 1 by itself" "$exit_rc" 1
wait_exit "$OPID" 100; check "other CA: exits 1 by itself" "$exit_rc" 1
for v in N O; do
	L=${!v}/workbot.log; label=$([ $v = N ] && echo "no ca_file" || echo "other CA")
	grep -qiE 'call failed method=auth.test .*(certificate|ssl)' "$L" \
		&& ok "$label: the log names a certificate error" || bad "$label: no certificate error logged: $(grep -i auth.test "$L" | tail -3)"
	n=$(grep -c 'call failed method=auth.test' "$L")
	r=$(grep -c 'auth.test failed (tls): retrying' "$L")
	[ "$n" -ge 2 ] && [ "$n" -le 6 ] && [ "$r" -eq $((n - 1)) ] \
		&& ok "$label: auth.test tried $n times (bounded), $r retries" || bad "$label: auth.test tried $n times, $r retries"
	grep -q "auth.test failed $n times, giving up: tls \"SSL certificate problem: .*\" (for a private CA set \[slack\] ca_file)" "$L" \
		&& ok "$label: gives up with the reason and the ca_file hint" || bad "$label: last lines: $(tail -2 "$L")"
	grep -qE 'AddressSanitizer|runtime error' "$L" && bad "$label: sanitizer report" || ok "$label: no sanitizer report"
done
st=$(cget "$A" stats)
check "no ca_file / other CA: no request reached the fake" "$(jget "$st" "[d['api_calls'], d['connections_open_calls'], d['sockets_total']]")" "[0, 0, 0]"

# ---- 4. https fine, wss host not in the certificate -------------------------
# A second fake whose certificate has only IP:127.0.0.1 and that hands out
# wss://localhost URLs: auth.test passes, every socket must fail the name check.
start_fake fake2 iponly
B=$FP
ctl "$B" config -H 'Content-Type: application/json' -d '{"ws_host":"localhost"}' >/dev/null
M=$T/mismatch MLP=$(free_port)
write_conf "$M" "$B" "$MLP" "ca_file = $CA"
start_workbot "$M"
poll 100 called_ok "$B" auth.test && ok "name mismatch: auth.test ok over https" || bad "name mismatch: auth.test: $(tail -5 "$M/workbot.log")"
poll 50 grep -q 'socket connect error' "$M/workbot.log" && ok "name mismatch: socket connect error logged" \
	|| bad "name mismatch: no connect error: $(tail -5 "$M/workbot.log")"
c0=$(fstat "$B" connections_open_calls)
sleep 6
c1=$(fstat "$B" connections_open_calls)
d=$((c1 - c0))
# 2 slots, backoff >= 1 s between attempts of a slot: at most ~14 in 6 s.
[ "$d" -ge 1 ] && [ "$d" -le 14 ] && ok "name mismatch: $d apps.connections.open calls in 6 s (retrying, no storm)" \
	|| bad "name mismatch: $d apps.connections.open calls in 6 s"
st=$(cget "$B" stats)
check "name mismatch: no WebSocket ever established" "$(jget "$st" "[d['sockets_total'], d['hellos_sent']]")" "[0, 0]"
check "name mismatch: /healthz not 200" "$([ "$(healthz "$MLP")" = 200 ] && echo 200 || echo not-200)" not-200
check "name mismatch: no socket live" "$(live_count "$MLP")" 0
grep -qiE 'hostname|host name|mismatch|verify' "$M/workbot.log" && ok "name mismatch: the log says why (lws verify error)" \
	|| bad "name mismatch: no verify reason: $(grep -i 'connect error\|lws' "$M/workbot.log" | tail -3)"
kill -0 "$WPID" 2>/dev/null && ok "name mismatch: daemon still running" || bad "name mismatch: daemon died"
stop_workbot "$WPID"; check "name mismatch: SIGTERM exit status" "$exit_rc" 0
grep -qE 'AddressSanitizer|runtime error' "$M/workbot.log" && bad "name mismatch: sanitizer report" || ok "name mismatch: no sanitizer report"

# ---- 5. workbot check: a ca_file that does not exist ------------------------
X=$T/missing
write_conf "$X" "$A" "$(free_port)" "ca_file = $T/no-such-ca.pem"
out=$("$WORKBOT" check -c "$X/workbot.conf" 2>&1); rc=$?
[ "$rc" -ne 0 ] && ok "check: missing ca_file refused (exit $rc)" || bad "check: missing ca_file accepted"
line=$(grep -n '^ca_file' "$X/workbot.conf" | cut -d: -f1)
echo "$out" | grep -q "workbot.conf:$line" && echo "$out" | grep -q 'ca_file' \
	&& ok "check: error names workbot.conf:$line and ca_file" || bad "check: message: $out"

# ---- the fakes stop cleanly (and, in a sanitizer build, without a report) --
for i in "${!FPIDS[@]}"; do
	kill -TERM "${FPIDS[$i]}"
	wait_exit "${FPIDS[$i]}" 50
	check "fake $i: SIGTERM exit status" "$exit_rc" 0
done
FPIDS=()
grep -lE 'AddressSanitizer|LeakSanitizer|runtime error' "$T"/fake*.err >/dev/null 2>&1 \
	&& bad "fake: sanitizer report: $(cat "$T"/fake*.err | head -5)" || ok "fakes: no sanitizer report"

echo "# $pass passed, $fail failed"
[ "$fail" -eq 0 ]
