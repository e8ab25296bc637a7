#!/usr/bin/env bash
# Daemon integration tests: the real `workbot run` against the fake Slack on
# 127.0.0.1. One group per meson test:
#   test_daemon.sh GROUP   (envelopes | refresh | failures | frames | dedupe | signals | listener | tokens)
# Needs WORKBOT, FAKE_SLACK and SEED_STORE in the environment (meson sets them).
# Every wait is a bounded poll; each group stops by itself.
set -u
group=${1:?group}
: "${WORKBOT:?}" "${FAKE_SLACK:?}"

T=$(mktemp -d)
chmod 700 "$T"
APP=xapp-1-A0FAKEAPP01-1-fake
BOT=xoxb-0001-fake
FPID= WPID=
pass=0 fail=0

cleanup() {
	[ -n "$WPID" ] && kill -9 "$WPID" 2>/dev/null
	[ -n "$FPID" ] && kill "$FPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

ok()  { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }
# jget JSON PYEXPR
jget() { python3 -c 'import json,sys
d = json.loads(sys.argv[1]); v = eval(sys.argv[2], {"d": d})
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1" "$2" 2>/dev/null || echo JGET-ERROR; }
# poll TENTHS CMD...: until CMD succeeds
poll() { local n=$1 i; shift; for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

start_fake() {
	"$FAKE_SLACK" --port 0 >"$T/fake.out" 2>"$T/fake.err" &
	FPID=$!
	poll 50 grep -q '^PORT ' "$T/fake.out" || { bad "fake slack did not start"; exit 1; }
	FP=$(awk '/^PORT /{print $2}' "$T/fake.out")
	F="http://127.0.0.1:$FP"
}
ctl()  { curl -s -m 5 -X POST "$F/_control/$1" "${@:2}"; }
cget() { curl -s -m 5 "$F/_control/$1"; }
stat() { jget "$(cget stats)" "d['$1']"; }

LP=$(free_port)
write_conf() { # write_conf [extra lines for [slack]]
	cat >"$T/workbot.conf" <<CONF
[slack]
app_token = env:WB_APP_TOKEN
bot_token = env:WB_BOT_TOKEN
api_url = $F/api/
connections = 2
workers = 2
ping_interval = 1
${1:-}

[store]
path = $T/store
key_file = $T/master.key
map_size = 16MiB

[listener]
bind = 127.0.0.1:$LP
CONF
}
export WB_APP_TOKEN=$APP WB_BOT_TOKEN=$BOT

start_workbot() {
	[ -e "$T/master.key" ] || "$WORKBOT" keygen -o "$T/master.key" >/dev/null
	"$WORKBOT" run -c "$T/workbot.conf" --log-level debug 2>>"$T/workbot.log" &
	WPID=$!
}
live_count() { curl -s -m 2 "http://127.0.0.1:$LP/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sockets_live"])' 2>/dev/null || echo 0; }
live_ge() { [ "$(live_count)" -ge "$1" ]; }
wait_live() { poll "${2:-100}" live_ge "$1"; }	# wait_live N [tenths]
stop_workbot() { # -> $stop_rc, $stop_s
	local i start=$(date +%s%N)
	kill -TERM "$WPID"
	for ((i = 0; i < 150; i++)); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
	wait "$WPID"; stop_rc=$?
	stop_s=$(( ($(date +%s%N) - start) / 1000000000 ))
	WPID=
}
# push TYPE [params...] -> envelope id on stdout
push() {
	local t=$1 a args=(--data-urlencode "type=$1"); shift
	for a in "$@"; do args+=(--data-urlencode "$a"); done
	{ ctl push "${args[@]}"; echo; } | head -1 | sed -n 's/.*"envelope_id":"\([^"]*\)".*/\1/p;t;s/.*/NONE/p'
}
acked() { # acked ENVELOPE_ID -> number of acks recorded for it
	cget "acks?envelope_id=$1" | grep -o '"seq":' | wc -l
}
acked_ge() { [ "$(acked "$1")" -ge "$2" ]; }
dispatched_eq() { [ "$(dispatched "$1" "$2")" -eq "$3" ]; }
dispatched() { grep -c "dispatched kind=$1 key=$2 " "$T/workbot.log"; }
wait_acked() { poll "${2:-50}" acked_ge "$1" 1; }

start_fake
write_conf
case "$group" in
envelopes)
	start_workbot
	wait_live 2 && ok "two sockets live" || bad "sockets not live: $(cat "$T/workbot.log" | tail -5)"
	h=$(curl -s -m 2 -w ' %{http_code}' "http://127.0.0.1:$LP/healthz")
	check "healthz 200 with both sockets" "${h##* }" 200
	check "healthz body" "$(jget "${h% *}" "[d['sockets_live'], d['sockets_wanted']]")" "[2, 2]"
	grep -q 'socket live .*num_connections=[0-9]* approximate_connection_time=18060' "$T/workbot.log" \
		&& ok "hello logged with num_connections and approximate_connection_time" || bad "hello log line"
	e1=$(push message_im user=U0001 text=help event_id=EvIM1)
	e2=$(push app_mention user=U0001 text=help event_id=EvMN1)
	e3=$(push block_actions user=U0001 action_id=wb_x value=v)
	e4=$(push slash_command user=U0001 text=help)
	e5=$(push noop event_id=EvNOOP1)
	for e in "$e1" "$e2" "$e3" "$e4" "$e5"; do wait_acked "$e" && ok "acked $e" || bad "not acked $e"; done
	poll 30 dispatched_eq message_im ev:EvIM1 1 && ok "message.im dispatched once" || bad "message.im dispatch"
	poll 30 dispatched_eq app_mention ev:EvMN1 1 && ok "app_mention dispatched once" || bad "app_mention dispatch"
	poll 30 grep -q 'dispatched kind=block_actions key=ia:U0001:' "$T/workbot.log" && ok "block_actions dispatched" || bad "block_actions dispatch"
	poll 30 grep -q 'dispatched kind=slash_command key=sc:' "$T/workbot.log" && ok "slash command dispatched" || bad "slash dispatch"
	grep -q 'key=ev:EvNOOP1' "$T/workbot.log" && bad "noop event was dispatched" || ok "noop event acked, not dispatched"
	acks=$(cget "acks?envelope_id=$e1")
	rtt=$(jget "$acks" "d['acks'][0]['rtt_us']")
	python3 -c "import sys; sys.exit(0 if 0 <= float('$rtt') < 3e6 else 1)" 2>/dev/null \
		&& ok "ack round trip recorded: ${rtt} us" || bad "no rtt: $acks"
	check "ack carries no payload" "$(jget "$acks" "d['acks'][0].get('payload')")" "null"
	m=$(curl -s -m 2 "http://127.0.0.1:$LP/metrics")
	echo "$m" | grep -qE '^workbot_envelopes_total\{type="events_api"\} [3-9]' && ok "metrics count envelopes" || bad "metrics: $(echo "$m" | grep envelopes_total)"
	echo "$m" | grep -qE '^workbot_ack_seconds_count [5-9]' && ok "ack histogram moved" || bad "ack histogram: $(echo "$m" | grep ack_seconds_count)"
	echo "$m" | grep -q 'workbot_sockets_live 2' && ok "sockets_live gauge" || bad "gauge: $(echo "$m" | grep sockets_live)"
	echo "$m" | grep -qE '^workbot_slack_api_calls_total\{method="auth.test",outcome="ok"\} 1$' && ok "auth.test counted" || bad "api metric: $(echo "$m" | grep 'api_calls_total.*auth.test')"
	echo "$m" | grep -qE '^workbot_slack_api_calls_total\{method="apps.connections.open",outcome="ok"\} [2-9]' && ok "apps.connections.open counted" || bad "api metric: $(echo "$m" | grep 'connections.open')"
	# An events_api payload without an inner event (app_rate_limited) is acked and logged.
	raw='{"envelope_id":"env-rl-1","payload":{"type":"app_rate_limited","team_id":"T0001","minute_rate_limited":1518467820,"api_app_id":"A0FAKEAPP01"},"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":""}'
	ctl "push?type=raw" --data-binary "$raw" >/dev/null
	wait_acked env-rl-1 && ok "app_rate_limited acked" || bad "app_rate_limited not acked"
	poll 20 grep -q 'envelope without an inner event type=app_rate_limited' "$T/workbot.log" && ok "app_rate_limited logged" || bad "app_rate_limited log"
	stop_workbot
	check "SIGTERM exits 0" "$stop_rc" 0
	[ "$stop_s" -le 10 ] && ok "stopped within 10 s (${stop_s} s)" || bad "stop took ${stop_s} s"
	;;
refresh)
	start_workbot
	wait_live 2 || bad "sockets not live"
	# Envelopes pushed all through refresh_requested and warning disconnects.
	: >"$T/ids"
	for round in 1 2 3; do
		for i in $(seq 1 15); do
			push message_im user=U0001 text=hi "event_id=EvR${round}_$i" >>"$T/ids"
		done
		reason=refresh_requested; [ "$round" = 2 ] && reason=warning
		ctl disconnect -d reason=$reason -d socket=oldest >/dev/null
		for i in $(seq 16 30); do
			push message_im user=U0001 text=hi "event_id=EvR${round}_$i" >>"$T/ids"
			sleep 0.02
		done
		wait_live 2 50 || bad "round $round: sockets not live again"
	done
	grep -c NONE "$T/ids" | grep -qx 0 && ok "all 90 envelopes pushed" || bad "push failed: $(grep -c NONE "$T/ids") of 90"
	# ack_counts: "ACKED_ALL TWICE" over the ids in $T/ids, from one read of the fake's records.
	ack_counts() { cget "acks?limit=100000" | python3 -c '
import json, sys, collections
acks = collections.Counter(a["envelope_id"] for a in json.load(sys.stdin)["acks"])
ids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
print(int(all(acks[i] >= 1 for i in ids)), sum(1 for i in ids if acks[i] > 1))' "$T/ids"; }
	all_acked() { [ "$(ack_counts | cut -d" " -f1)" = 1 ]; }
	poll 50 all_acked && ok "every envelope acked" || bad "some envelope not acked: $(cget "acks?limit=100000" | python3 -c '
import json, sys
acked = {a["envelope_id"] for a in json.load(sys.stdin)["acks"]}
print([l.strip() for l in open(sys.argv[1]) if l.strip() not in acked])' "$T/ids")"
	check "no envelope acked twice" "$(ack_counts | cut -d' ' -f2)" 0
	n_disp() { grep -c 'dispatched kind=message_im key=ev:EvR' "$T/workbot.log"; }
	all_disp() { [ "$(n_disp)" -ge 90 ]; }
	poll 30 all_disp
	check "90 envelopes dispatched" "$(n_disp)" 90
	check "each dispatched once" "$(grep -o 'dispatched kind=message_im key=ev:EvR[0-9_]*' "$T/workbot.log" | sort | uniq -d | wc -l)" 0
	check "make before break: replacements opened (3 refreshes + 2 first)" "$(stat hellos_sent)" 5
	s=$(cget stats)
	[ "$(jget "$s" "d['sockets_open']")" -le 3 ] && ok "old sockets closed" || bad "sockets open: $(jget "$s" "d['sockets_open']")"
	grep -q 'reason=refresh_requested' "$T/workbot.log" && grep -q 'reason=warning' "$T/workbot.log" && ok "disconnect reasons logged" || bad "reasons not logged"
	curl -s "http://127.0.0.1:$LP/metrics" | grep -qE 'workbot_reconnects_total\{reason="refresh_requested"\} 2' \
		&& ok "reconnects counted by reason" || bad "reconnect metric: $(curl -s "http://127.0.0.1:$LP/metrics" | grep reconnects_total)"
	stop_workbot
	check "SIGTERM exits 0" "$stop_rc" 0
	;;
failures)
	# apps.connections.open rate limited at start: Retry-After honoured.
	ctl fail -d method=apps.connections.open -d count=2 -d status=429 -d retry_after=2 >/dev/null
	t0=$(date +%s%N)
	start_workbot
	wait_live 1 80 && ok "connected after 429" || bad "not connected after 429"
	dt=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ "$dt" -ge 1900 ] && ok "Retry-After 2 s honoured (${dt} ms)" || bad "connected after only ${dt} ms"
	wait_live 2 50 || bad "second socket"
	# Abrupt kill: reconnect.
	calls0=$(stat connections_open_calls)
	ctl kill -d socket=oldest >/dev/null
	poll 20 eval '[ "$(stat connections_open_calls)" -gt "$calls0" ]' && ok "killed socket: new apps.connections.open" || bad "no reconnect after kill"
	wait_live 2 80 && ok "two sockets live after kill" || bad "not live after kill"
	# Half-open: the peer goes silent; dropped within 4 x ping_interval (4 s) and replaced.
	calls1=$(stat connections_open_calls)
	t0=$(date +%s%N)
	ctl silent -d socket=newest -d on=1 >/dev/null
	poll 100 eval '[ "$(stat connections_open_calls)" -gt "$calls1" ]' && ok "silent socket replaced" || bad "silent socket not replaced"
	dt=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ "$dt" -le 7000 ] && ok "half-open detected in ${dt} ms (limit 4 s + reconnect)" || bad "half-open took ${dt} ms"
	ctl reset -d sockets=kill >/dev/null
	wait_live 2 100 && ok "live again after reset" || bad "not live after reset"
	# too_many_websockets both ways: no reconnect storm.
	calls2=$(stat connections_open_calls)
	ctl config -d too_many_next=4 >/dev/null
	ctl fail -d method=apps.connections.open -d count=3 -d error=too_many_websockets >/dev/null
	ctl kill -d socket=all >/dev/null 2>&1 || { ctl kill -d socket=oldest >/dev/null; ctl kill -d socket=newest >/dev/null; }
	sleep 6
	n=$(( $(stat connections_open_calls) - calls2 ))
	[ "$n" -le 10 ] && ok "too_many_websockets: $n apps.connections.open calls in 6 s (no storm)" || bad "storm: $n calls in 6 s"
	grep -q 'too_many_websockets' "$T/workbot.log" && ok "too_many_websockets logged" || bad "too_many not logged"
	wait_live 1 300 && ok "recovers after too_many_websockets" || bad "did not recover"
	# healthz 503 while nothing is live.
	ctl fail -d method=apps.connections.open -d count=1000 -d status=500 >/dev/null
	ctl kill -d socket=oldest >/dev/null; ctl kill -d socket=newest >/dev/null; ctl kill -d socket=oldest >/dev/null
	poll 50 eval '[ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:'$LP'/healthz)" = 503 ]' && ok "healthz 503 with no live socket" || bad "healthz not 503"
	ctl reset >/dev/null
	wait_live 1 400 && ok "healthz back to live after Slack recovers" || bad "no recovery"
	# link_disabled on every socket: exit 2 with a clear line.
	wait_live 2 100
	ctl disconnect -d reason=link_disabled -d socket=all >/dev/null
	for ((i = 0; i < 100; i++)); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
	wait "$WPID"; rc=$?; WPID=
	check "link_disabled everywhere exits 2" "$rc" 2
	grep -q 'Socket Mode is disabled for this app' "$T/workbot.log" && ok "link_disabled explained" || bad "no link_disabled message"
	;;
frames)
	start_workbot
	wait_live 2 || bad "sockets not live"
	e1=$(push message_im user=U0001 text=big event_id=EvBig1 pad=204800)
	e2=$(push message_im user=U0001 text=big event_id=EvBig2 pad=204800 fragment=16384)
	wait_acked "$e1" && ok "200 KiB unfragmented acked" || bad "200 KiB not acked"
	wait_acked "$e2" && ok "200 KiB in fragments acked" || bad "fragmented not acked"
	poll 30 dispatched_eq message_im ev:EvBig1 1 && ok "200 KiB dispatched" || bad "200 KiB not dispatched"
	poll 30 dispatched_eq message_im ev:EvBig2 1 && ok "fragmented dispatched" || bad "fragmented not dispatched"
	e3=$(push message_im user=U0001 text=huge event_id=EvHuge pad=1500000 socket=oldest)
	ctl push -d type=garbage -d bytes=5000 -d socket=oldest >/dev/null
	ctl "push?type=raw&socket=oldest" --data-binary '{"type":"events_api","payload":{}}' >/dev/null
	ctl "push?type=raw&socket=oldest" --data-binary '{"type":"brand_new","envelope_id":"env-unknown-1"}' >/dev/null
	ctl "push?type=raw&socket=oldest" --data-binary '[1,2,3]' >/dev/null
	ctl push -d type=message_im -d frame=binary -d socket=oldest >/dev/null
	e4=$(push message_im user=U0001 text=after event_id=EvAfter socket=oldest)
	wait_acked "$e4" && ok "still acking on that socket after bad frames" || bad "socket stopped acking"
	check "1.5 MiB envelope dropped, not acked" "$(acked "$e3")" 0
	grep -q 'dropped a message over 1048576 bytes' "$T/workbot.log" && ok "oversize logged" || bad "oversize not logged"
	grep -q 'dropped a frame that is not an envelope' "$T/workbot.log" && ok "garbage logged" || bad "garbage not logged"
	grep -q 'ignored a binary frame' "$T/workbot.log" && ok "binary frame ignored" || bad "binary not logged"
	wait_acked env-unknown-1 && ok "unknown envelope type acked" || bad "unknown type not acked"
	check "sockets never dropped" "$(stat sockets_closed)" 0
	kill -0 "$WPID" && ok "daemon alive" || bad "daemon died"
	stop_workbot
	check "SIGTERM exits 0" "$stop_rc" 0
	;;
dedupe)
	start_workbot
	wait_live 2 || bad "sockets not live"
	a=$(push message_im user=U0001 text=x event_id=EvDup1 socket=oldest)
	b=$(push message_im user=U0001 text=x event_id=EvDup1 socket=newest retry_attempt=1)
	wait_acked "$a" && wait_acked "$b" && ok "both deliveries acked" || bad "duplicates not acked"
	sleep 0.5
	check "same event on two sockets dispatched once" "$(dispatched message_im ev:EvDup1)" 1
	r=$(push message_im user=U0001 text=x event_id=EvRetryOnly retry_attempt=2)
	wait_acked "$r" || bad "retry not acked"
	poll 30 dispatched_eq message_im ev:EvRetryOnly 1 && ok "retry of a never-seen event is run" || bad "retry not run"
	c1=$(push block_actions user=U0001 action_id=wb_a action_ts=1700000000.000001)
	c2=$(push block_actions user=U0001 action_id=wb_a action_ts=1700000000.000001)
	wait_acked "$c2" || bad "action not acked"
	sleep 0.5
	check "same click twice dispatched once" "$(grep -c 'dispatched kind=block_actions key=ia:U0001:1700000000.000001:wb_a ' "$T/workbot.log")" 1
	curl -s "http://127.0.0.1:$LP/metrics" | grep -qE '^workbot_duplicates_total [2-9]' && ok "duplicates counted" || bad "duplicates metric"
	sleep 1.5	# one persist tick
	stop_workbot
	check "SIGTERM exits 0" "$stop_rc" 0
	start_workbot
	wait_live 1 || bad "not live after restart"
	d=$(push message_im user=U0001 text=x event_id=EvDup1 retry_attempt=3)
	wait_acked "$d" && ok "redelivery after restart acked" || bad "not acked after restart"
	sleep 0.5
	check "redelivery after restart not run again" "$(dispatched message_im ev:EvDup1)" 1
	n=$(push message_im user=U0001 text=x event_id=EvNew)
	poll 30 dispatched_eq message_im ev:EvNew 1 && ok "new event after restart runs" || bad "new event not run"
	stop_workbot
	;;
signals)
	start_workbot
	wait_live 2 || bad "sockets not live"
	cp "$T/workbot.conf" "$T/good.conf"
	cat >>"$T/workbot.conf" <<'CONF'

[app jira]
title = Jira
auth = none
api_url = http://127.0.0.1:9/jira
CONF
	kill -HUP "$WPID"
	poll 30 grep -q 'reloaded file=.* apps=1' "$T/workbot.log" && ok "SIGHUP with a good config reloads" || bad "no reload"
	sed -i 's/^connections = 2/connections = 3/' "$T/workbot.conf"
	kill -HUP "$WPID"
	poll 30 grep -q '\[slack\] connections changed: this takes effect only after a restart' "$T/workbot.log" \
		&& ok "a [slack] change is logged as needing a restart" || bad "restart-needed not logged"
	cp "$T/good.conf" "$T/workbot.conf"
	printf '[app bad name]\nauth = sideways\n' >>"$T/workbot.conf"
	kill -HUP "$WPID"
	poll 30 grep -q 'reload refused: keeping the running configuration' "$T/workbot.log" && ok "broken config refused" || bad "broken config not refused"
	grep -qE "error config .*workbot.conf:[0-9]+: \[app bad name\]" "$T/workbot.log" && ok "errors logged as file:line" || bad "no file:line error"
	check "sockets stayed up through reloads" "$(stat sockets_closed)" 0
	e=$(push message_im user=U0001 text=x event_id=EvAfterHup)
	wait_acked "$e" && ok "still serving after a broken reload" || bad "not serving"
	stop_workbot
	check "SIGTERM exits 0" "$stop_rc" 0
	[ "$stop_s" -le 10 ] && ok "stopped within 10 s" || bad "stop took ${stop_s} s"
	cp "$T/good.conf" "$T/workbot.conf"
	start_workbot
	wait_live 1 || bad "not live"
	kill -INT "$WPID"
	for ((i = 0; i < 150; i++)); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
	wait "$WPID"; rc=$?; WPID=
	check "SIGINT exits 0" "$rc" 0
	;;
listener)
	start_workbot
	wait_live 2 || bad "sockets not live"
	code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@"; }
	check "unknown path 404" "$(code "http://127.0.0.1:$LP/nope")" 404
	check "POST /healthz 405" "$(code -X POST "http://127.0.0.1:$LP/healthz")" 405
	big=$(python3 -c 'print("a" * 9000)')
	c=$(code -H "X-Big: $big" "http://127.0.0.1:$LP/healthz")
	case "$c" in 431|000) ok "9 KiB head refused ($c)";; *) bad "9 KiB head answered $c";; esac
	check "listener still answers" "$(code "http://127.0.0.1:$LP/healthz")" 200
	check "nothing on 127.0.0.2" "$(code "http://127.0.0.2:$LP/healthz")" 000
	grep -qE "^ *[0-9]+: [0-9A-F]{32}:$(printf '%04X' "$LP") " /proc/net/tcp6 && bad "listening on IPv6" || ok "not listening on IPv6"
	stop_workbot
	;;
tokens)
	# A refused app token: exit 2 naming the setting.
	WB_APP_TOKEN=xapp-1-WRONG-1-nope start_workbot
	for ((i = 0; i < 100; i++)); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
	wait "$WPID"; rc=$?; WPID=
	check "invalid app token exits 2" "$rc" 2
	grep -q '\[slack\] app_token' "$T/workbot.log" && ok "message names [slack] app_token" || bad "app_token not named"
	grep -q 'WRONG' "$T/workbot.log" && bad "token value in the log" || ok "token value not logged"
	: >"$T/workbot.log"
	# An xoxb token where the app token belongs: not_allowed_token_type, same exit.
	WB_APP_TOKEN=$BOT start_workbot
	for ((i = 0; i < 100; i++)); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
	wait "$WPID"; rc=$?; WPID=
	check "bot token as app token exits 2" "$rc" 2
	: >"$T/workbot.log"
	# A refused bot token (auth.test): exit 2 naming the setting.
	WB_BOT_TOKEN=xoxb-WRONG start_workbot
	for ((i = 0; i < 100; i++)); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
	wait "$WPID"; rc=$?; WPID=
	check "refused bot token exits 2" "$rc" 2
	grep -q '\[slack\] bot_token' "$T/workbot.log" && ok "message names [slack] bot_token" || bad "bot_token not named"
	;;
*)
	echo "unknown group $group"; exit 2 ;;
esac

if [ "$fail" -gt 0 ]; then
	echo "--- workbot log (tail)"; tail -40 "$T/workbot.log"
fi
grep -qE 'xapp-1-A0FAKEAPP01-1-fake|xoxb-0001-fake|ticket=' "$T/workbot.log" && bad "a token or socket ticket reached the log" || ok "no token or ticket in the log"
echo "# $group: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
