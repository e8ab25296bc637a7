#!/bin/bash
# Self-test of the fake Slack: start it on port 0, drive its Web API with
# curl, its Socket Mode side with ws_probe, and its control API; then run the
# C client test (burst + helper). Every wait is a bounded loop; the whole run
# takes a few seconds. TAP-ish output; exit 0 when everything passed.
#
#   test_fake_slack.sh FAKE_SLACK WS_PROBE [TEST_FAKE_SLACK_CLIENT]
set -u

FAKE=${1:?fake_slack path}
PROBE=${2:?ws_probe path}
CTEST=${3:-}
TMP=$(mktemp -d /tmp/fake_slack_test.XXXXXX)
APP=xapp-1-A0FAKEAPP01-1-fake
BOT=xoxb-0001-fake
FPID=
PIDS=()
n=0
failed=0

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "$FPID" ] && kill "$FPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# got: ${2:0:600}"; }
# check DESC STRING PATTERN: STRING must contain PATTERN (fixed string)
check() { if [[ "$2" == *"$3"* ]]; then ok "$1"; else bad "$1" "$2"; fi; }
check_not() { if [[ "$2" != *"$3"* ]]; then ok "$1"; else bad "$1" "$2"; fi; }

# jget JSON PYEXPR: print a value from JSON (python3 ships with meson)
jget() { python3 -c 'import json,sys
try:
    d = json.loads(sys.argv[1])
    v = eval(sys.argv[2], {"d": d})
    print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
except Exception as e:
    print("JGET-ERROR %s" % e)' "$1" "$2"; }

# wait_for FILE PATTERN [TENTHS]: poll until FILE contains PATTERN
wait_for() {
	local i
	for ((i = 0; i < ${3:-50}; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

api() { # api METHOD TOKEN [curl args...]
	local m=$1 t=$2; shift 2
	if [ -n "$t" ]; then
		curl -s -m 5 -X POST -H "Authorization: Bearer $t" "$@" "$B/api/$m"
	else
		curl -s -m 5 -X POST "$@" "$B/api/$m"
	fi
}
ctl() { local r=$1; shift; curl -s -m 10 -X POST "$@" "$B/_control/$r"; }
ctlget() { curl -s -m 10 "$B/_control/$1"; }
open_url() { jget "$(api apps.connections.open "$APP")" 'd["url"]'; }
probe() { # probe NAME URL [args]: start ws_probe in the background
	local name=$1 url=$2; shift 2
	"$PROBE" "$@" "$url" > "$TMP/$name.out" 2>&1 &
	PIDS+=($!)
	eval "${name}_pid=$!"
}
sock_of() { jget "$(ctlget stats)" "[s['id'] for s in d['sockets'] if s['state'] in ('live','silent')][-1]"; }

# --- start on port 0 -------------------------------------------------------
"$FAKE" --port 0 > "$TMP/fake.out" 2> "$TMP/fake.err" &
FPID=$!
if wait_for "$TMP/fake.out" "PORT " 50; then ok "fake started"; else bad "fake started" "$(cat "$TMP/fake.err")"; exit 1; fi
PORT=$(awk '/^PORT /{print $2}' "$TMP/fake.out")
B="http://127.0.0.1:$PORT"
check "listens on 127.0.0.1 only" "$(ss -ltnH "sport = :$PORT" 2>/dev/null || echo 127.0.0.1:$PORT)" "127.0.0.1:$PORT"

# --- apps.connections.open --------------------------------------------------
r=$(api apps.connections.open "$APP")
check "connections.open: ok with the app token" "$r" "\"url\":\"ws://127.0.0.1:$PORT/link/?ticket="
check "connections.open: URL carries app_id" "$r" "&app_id=A0FAKEAPP01"
u1=$(jget "$r" 'd["url"]'); u2=$(open_url)
if [ "$u1" != "$u2" ]; then ok "connections.open: a fresh ticket each call"; else bad "fresh ticket" "$u1"; fi
check "connections.open: bot token refused" "$(api apps.connections.open "$BOT")" '"error":"not_allowed_token_type"'
check "connections.open: unknown xapp refused" "$(api apps.connections.open xapp-1-nope)" '"error":"invalid_auth"'
check "connections.open: no token" "$(api apps.connections.open "")" '"error":"not_authed"'
check "connections.open: token in the body refused" "$(api apps.connections.open "" -d "token=$APP")" '"ok":false'
check "connections.open: JSON body accepted" "$(api apps.connections.open "$APP" -H 'Content-Type: application/json' -d '{}')" '"ok":true'
check "auth.test: bot token" "$(api auth.test "$BOT")" '"team":"Acme","user":"workbot","team_id":"T0001","user_id":"UBOT","bot_id":"B0001"'
check "auth.test: bad token" "$(api auth.test xoxb-wrong)" '"error":"invalid_auth"'
check "auth.test: injected invalid_auth" "$(ctl fail -d method=auth.test -d error=invalid_auth -d count=1 >/dev/null; api auth.test "$BOT")" '"error":"invalid_auth"'

# --- Socket Mode: connect, hello, envelope, ack -------------------------------
url=$(open_url)
probe p1 "$url" --ack --timeout 30
if wait_for "$TMP/p1.out" "type=hello"; then ok "socket: hello received"; else bad "hello" "$(cat "$TMP/p1.out")"; fi
hello=$(grep -m1 '^BODY {"type":"hello"' "$TMP/p1.out")
check "hello: Slack's shape" "$hello" '"num_connections":1,"debug_info":{"host":"applink-'
check "hello: connection time and app_id" "$hello" '"approximate_connection_time":18060},"connection_info":{"app_id":"A0FAKEAPP01"}'
S1=$(sock_of)

probe reuse "$url" --timeout 5
wait_for "$TMP/reuse.out" "ERROR" 50
check "socket: a used ticket is refused" "$(cat "$TMP/reuse.out")" "ERROR"
check "stats: ticket rejection counted" "$(ctlget stats)" '"tickets_rejected":1'

r=$(ctl push -G --data-urlencode "text=hello <there> & you" -d type=message_im -d user=U0002 -d event_id=Ev0TEST0001 -d "socket=$S1")
E=$(jget "$r" 'd["envelope_id"]')
check "push: message.im accepted" "$r" '"event_id":"Ev0TEST0001"'
wait_for "$TMP/p1.out" "ACK $E"
body=$(grep -F "\"envelope_id\":\"$E\"" "$TMP/p1.out" | grep '^BODY')
check "envelope: events_api message.im shape" "$body" '"type":"message","text":"hello <there> & you","user":"U0002"'
check "envelope: channel_type im, event_id, retry fields" "$body" '"channel_type":"im"},"type":"event_callback","event_id":"Ev0TEST0001"'
check "envelope: retry_attempt 0" "$body" '"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":""}'
acks=""
for ((i = 0; i < 50; i++)); do acks=$(ctlget "acks?envelope_id=$E"); [[ "$acks" == *'"known":true'* ]] && break; sleep 0.1; done
check "ack recorded, known, on its socket" "$acks" "\"envelope_id\":\"$E\",\"socket\":$S1,\"known\":true,\"duplicate\":false"
rtt=$(jget "$acks" 'd["acks"][0]["rtt_us"] > 0')
check "ack round trip measured" "$rtt" "true"

ctl push -d type=app_mention -d text=help -d retry_attempt=2 >/dev/null
wait_for "$TMP/p1.out" '"type":"app_mention"'
body=$(grep '"type":"app_mention"' "$TMP/p1.out" | grep '^BODY')
check "envelope: app_mention mentions the bot" "$body" '"text":"<@UBOT> help"'
check "envelope: retry_attempt/reason" "$body" '"retry_attempt":2,"retry_reason":"timeout"'
ctl push -d type=block_actions -d action_id=disconnect -d value=salesforce -d user=U0001 >/dev/null
wait_for "$TMP/p1.out" 'type=interactive'
body=$(grep '"type":"block_actions"' "$TMP/p1.out" | grep '^BODY')
check "envelope: block_actions action" "$body" '"action_id":"disconnect","block_id":'
check "envelope: block_actions value + response_url" "$body" "\"response_url\":\"http://127.0.0.1:$PORT/response/"
check "envelope: interactive type" "$body" '"type":"interactive","accepts_response_payload":true}'
RURL=$(jget "${body#BODY }" 'd["payload"]["response_url"]')
ctl push -d type=slash_command -d text="connections" >/dev/null
wait_for "$TMP/p1.out" 'type=slash_commands'
body=$(grep '"type":"slash_commands"' "$TMP/p1.out" | grep '^BODY')
check "envelope: slash command" "$body" '"command":"/workbot","text":"connections"'

# --- frames: >64 KiB, fragmented, binary, garbage --------------------------------
ctl push -d type=noop -d pad=70000 >/dev/null
wait_for "$TMP/p1.out" "n=6 "
check "frame: 70 KB unfragmented" "$(grep '^MSG n=6 ' "$TMP/p1.out")" "frames=1 binary=0 json=1 type=events_api"
len=$(grep '^MSG n=6 ' "$TMP/p1.out" | sed 's/.*len=\([0-9]*\).*/\1/')
if [ "${len:-0}" -gt 65536 ]; then ok "frame: larger than 64 KiB ($len)"; else bad "frame >64KiB" "$len"; fi
ctl push -d type=noop -d pad=150000 -d fragment=40000 >/dev/null
wait_for "$TMP/p1.out" "n=7 "
check "frame: 150 KB in 4 fragments, reassembled" "$(grep '^MSG n=7 ' "$TMP/p1.out")" "frames=4 binary=0 json=1 type=events_api"
ctl push -d type=noop -d frame=binary >/dev/null
wait_for "$TMP/p1.out" "n=8 "
check "frame: binary" "$(grep '^MSG n=8 ' "$TMP/p1.out")" "binary=1"
ctl push -d type=garbage -d bytes=300 >/dev/null
wait_for "$TMP/p1.out" "n=9 "
check "frame: garbage text" "$(grep '^MSG n=9 ' "$TMP/p1.out")" "binary=0 json=0"
printf '%s' '{"envelope_id":"raw-0001","type":"events_api","payload":{"type":"app_rate_limited","team_id":"T0001","minute_rate_limited":1518467820,"api_app_id":"A0FAKEAPP01"},"accepts_response_payload":false}' > "$TMP/raw.json"
r=$(curl -s -m 5 -X POST --data-binary @"$TMP/raw.json" "$B/_control/push?type=raw")
check "push: raw JSON" "$r" '"envelope_id":"raw-0001"'
wait_for "$TMP/p1.out" "ACK raw-0001"
check "raw envelope delivered and acked" "$(cat "$TMP/p1.out")" "ACK raw-0001"

# --- Web API: 429 injection, errors ------------------------------------------------
ctl fail -d method=chat.postMessage -d count=1 -d status=429 -d retry_after=3 >/dev/null
hdr=$(api chat.postMessage "$BOT" -i -d channel=C0001 -d text=hi)
check "429: status" "$hdr" "HTTP/1.1 429"
check "429: Retry-After" "$(tr -d '\r' <<<"$hdr" | tr 'A-Z' 'a-z')" "retry-after: 3"
check "429: ratelimited body" "$hdr" '"error":"ratelimited"'
r=$(api chat.postMessage "$BOT" -d channel=C0001 -d text=hi)
check "after the 429: ok, ts, message" "$r" '"ok":true,"channel":"C0001","ts":"'
ctl fail -d method=chat.postEphemeral -d error=user_not_in_channel >/dev/null
check "injected ok:false error" "$(api chat.postEphemeral "$BOT" -d channel=C1 -d user=U0001 -d text=x)" '"ok":false,"error":"user_not_in_channel"'
check "chat.postEphemeral ok" "$(api chat.postEphemeral "$BOT" -d channel=C1 -d user=U0001 -d text=x)" '"ok":true,"message_ts":"'
check "chat.update ok" "$(api chat.update "$BOT" -H 'Content-Type: application/json' -d '{"channel":"C1","ts":"1.2","text":"done"}')" '"ok":true,"channel":"C1","ts":"1.2"'
check "conversations.open" "$(api conversations.open "$BOT" -d users=U0001)" '"channel":{"id":"D0001"}'
check "users.info (built-in)" "$(api users.info "$BOT" -d user=U0001)" '"email":"jane@acme.com"'
check "users.info unknown" "$(api users.info "$BOT" -d user=U9999)" '"error":"user_not_found"'
ctl user -d id=U0100 -d real_name="Zoë Test" -d email=zoe@acme.com >/dev/null
check "users.info (added by control)" "$(api users.info "$BOT" -d user=U0100)" '"real_name":"Zoë Test"'
check "xapp token on a bot method" "$(api chat.postMessage "$APP" -d channel=C1 -d text=x)" '"error":"not_allowed_token_type"'
check "unknown method" "$(api nope.nope "$BOT")" '"error":"unknown_method"'

# --- Block Kit validation ---------------------------------------------------------
many=$(python3 -c 'import json; print(json.dumps({"channel":"C1","text":"t","blocks":[{"type":"divider"}]*51}))')
check "blocks: 51 blocks refused" "$(api chat.postMessage "$BOT" -H 'Content-Type: application/json' -d "$many")" '"error":"invalid_blocks"'
long=$(python3 -c 'import json; print(json.dumps({"channel":"C1","text":"t","blocks":[{"type":"actions","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"x"*80},"value":"v"}]}]}))')
r=$(api chat.postMessage "$BOT" -H 'Content-Type: application/json' -d "$long")
check "blocks: 80-char button text refused" "$r" '"error":"invalid_blocks"'
check "blocks: message names the rule" "$r" 'blocks[0].elements[0].text: 80 chars > 75 (button text)'
big=$(python3 -c 'import json; print(json.dumps({"type":"section","text":{"type":"mrkdwn","text":"y"*3001}}))')
check "blocks: section text > 3000 (form body)" "$(api chat.postMessage "$BOT" --data-urlencode channel=C1 --data-urlencode text=t --data-urlencode "blocks=[$big]")" '3001 chars > 3000'
check "no text, no blocks" "$(api chat.postMessage "$BOT" -d channel=C1)" '"error":"no_text"'
good=$(python3 -c 'import json; print(json.dumps({"channel":"C1","text":"t","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"hi"}},{"type":"actions","elements":[{"type":"button","action_id":"disconnect","text":{"type":"plain_text","text":"Disconnect"},"style":"danger","value":"sf","confirm":{"title":{"type":"plain_text","text":"Sure?"},"text":{"type":"mrkdwn","text":"Really"},"confirm":{"type":"plain_text","text":"Yes"},"deny":{"type":"plain_text","text":"No"}}}]}]}))')
check "blocks: a valid message passes" "$(api chat.postMessage "$BOT" -H 'Content-Type: application/json' -d "$good")" '"ok":true'
bk=$(ctlget blockkit)
check "control: violations reported" "$bk" '"violations":4,"bad_messages":4'
check "control: violation messages" "$bk" '"blocks: 51 blocks > 50"'
r=$(curl -s -m 5 -X POST -H 'Content-Type: application/json' -d '{"text":"Disconnected","replace_original":true}' "$RURL")
check "response_url: accepted" "$r" '{"ok":true}'
r=$(curl -s -m 5 -X POST -H 'Content-Type: application/json' -d "$long" "$RURL")
check "response_url: Block Kit checked" "$r" '"error":"invalid_blocks"'
calls=$(ctlget "calls?method=chat.postMessage")
check "calls: token type recorded" "$calls" '"token_type":"xoxb","token_source":"header"'
check "calls: body recorded" "$calls" '"body":{"channel":"C0001","text":"hi"}'
check_not "calls: never the token" "$(ctlget calls?limit=100000)" "$BOT"
check_not "calls: never the app token" "$(ctlget calls?limit=100000)" "$APP"
check "calls: response_url recorded" "$(ctlget calls?method=response_url)" '"replace_original":true'

# --- disconnect, too_many_websockets, kill, silent, oversized ack -----------------
ctl disconnect -d "socket=$S1" -d reason=warning >/dev/null
wait_for "$TMP/p1.out" '"reason":"warning"'
check "disconnect warning sent" "$(grep '"type":"disconnect"' "$TMP/p1.out")" '{"type":"disconnect","reason":"warning","debug_info":{"host":"applink-'
ctl disconnect -d "socket=$S1" -d reason=refresh_requested -d then=close -d delay_ms=100 >/dev/null
wait_for "$TMP/p1.out" "CLOSED"
check "refresh_requested then Close 1000" "$(cat "$TMP/p1.out")" "CLOSE code=1000"

ctl config -d too_many_next=1 >/dev/null
probe p2 "$(open_url)" --timeout 10
wait_for "$TMP/p2.out" "CLOSED"
check "too_many_websockets before hello" "$(grep '^BODY' "$TMP/p2.out" | head -1)" '"reason":"too_many_websockets"'
check_not "no hello after too_many_websockets" "$(cat "$TMP/p2.out")" '"type":"hello"'
ctl fail -d method=apps.connections.open -d error=too_many_websockets >/dev/null
check "too_many_websockets from connections.open" "$(api apps.connections.open "$APP")" '"error":"too_many_websockets"'
ctl fail -d method=apps.connections.open -d status=429 -d retry_after=30 >/dev/null
check "connections.open rate limited" "$(api apps.connections.open "$APP" -i)" "HTTP/1.1 429"

probe p3 "$(open_url)" --timeout 10
wait_for "$TMP/p3.out" "type=hello"
S3=$(sock_of)
ctl kill -d "socket=$S3" >/dev/null
wait_for "$TMP/p3.out" "CLOSED"
check "kill: TCP closed" "$(cat "$TMP/p3.out")" "CLOSED"
check_not "kill: no Close frame" "$(cat "$TMP/p3.out")" "CLOSE code"

probe p4 "$(open_url)" --ack --timeout 10
wait_for "$TMP/p4.out" "type=hello"
S4=$(sock_of)
ctl silent -d "socket=$S4" -d on=1 >/dev/null
r=$(ctl push -d "socket=$S4" -d type=noop)
check "silent: push accepted" "$r" '"silent":true'
sleep 0.3
check_not "silent: nothing delivered" "$(cat "$TMP/p4.out")" "n=2 "
st=$(ctlget stats)
check "silent: reported" "$st" '"sockets_silent":1'
check "silent: black-holed count" "$st" '"blackholed":1'
check "silent: TCP stays open" "$(cat "$TMP/p4.out")" "OPEN"
check_not "silent: not closed" "$(cat "$TMP/p4.out")" "CLOSED"
ctl kill -d "socket=$S4" >/dev/null
wait_for "$TMP/p4.out" "CLOSED"

probe p5 "$(open_url)" --ack --ack-pad 30000 --timeout 10
wait_for "$TMP/p5.out" "type=hello"
ctl push -d type=noop >/dev/null
wait_for "$TMP/p5.out" "CLOSED"
check "oversized ack: Slack's 1009 close" "$(cat "$TMP/p5.out")" "CLOSE code=1009"
check "oversized ack counted" "$(ctlget stats)" '"acks_oversize":1'

st=$(ctlget stats)
check "stats: connections.open calls counted" "$st" '"connections_open_calls":14'
check "stats: hellos counted" "$st" '"hellos_sent":4'
check "stats: no socket left" "$st" '"sockets_open":0'
check "burst without a socket aborts" "$(ctl 'burst?n=10&wait=1&timeout_ms=2000')" '"state":"aborted","error":"no_socket"'
check "reset" "$(ctl reset)" '{"ok":true}'
check "reset clears records" "$(ctlget acks)" '"acks":[],"next":0'

# --- C helper + burst -------------------------------------------------------------
if [ -n "$CTEST" ]; then
	if out=$("$CTEST" "$FAKE" "$PROBE" 2>&1); then ok "C client test"; else bad "C client test" "$out"; fi
	echo "$out" | sed 's/^/#   /'
fi

# --- clean exit ------------------------------------------------------------------
kill -TERM "$FPID"
rc=124
for ((i = 0; i < 100; i++)); do
	if ! kill -0 "$FPID" 2>/dev/null; then wait "$FPID"; rc=$?; break; fi
	sleep 0.1
done
FPID_DONE=$FPID; FPID=
if [ "$rc" = 0 ]; then ok "SIGTERM: clean exit"; else bad "SIGTERM: clean exit (rc=$rc)" "$(tail -20 "$TMP/fake.err")"; fi
: "$FPID_DONE"

echo "1..$n"
[ "$failed" = 0 ]
