#!/usr/bin/env bash
# What Slack users see, end to end: the real `workbot run` against the fake
# Slack and the fake OAuth provider on 127.0.0.1; curl is the browser.
#   test_bot.sh GROUP   (commands | personal | disconnect | shared | errors | more)
# Needs WORKBOT, FAKE_SLACK, FAKE_OAUTH in the environment (meson sets them).
set -u
group=${1:?group}
PREFIX=DISTINCTIVEbot7z
WB_SF_SECRET=sf-secret-bot
. "$(dirname "$0")/lib_oauth.sh"
fake_app jane@acme.com
curl -s -X POST "$FS/_control/user" -d id=U0002 -d team_id=T0001 -d real_name="Bob <b>Approver</b>" -d email=bob@acme.com >/dev/null

write_conf
cat >>"$T/workbot.conf" <<CONF

[recipe create-opportunity]
command = create opportunity
description = Create a Salesforce opportunity
app = salesforce
verify_user_access = true
params = name amount? close_date?
method = POST
path = /services/data/v59.0/sobjects/Opportunity
body = {"Name": "{{name}}", "Amount": "{{amount}}", "StageName": "Prospecting"}
reply = Created opportunity *{{name}}* (\`{{response.id}}\`)
buttons = Approve: approve id={{response.id}} | Reject: reject id={{response.id}}

[recipe approve]
command = approve
description = Approve an opportunity
app = salesforce
verify_user_access = true
params = id
method = PATCH
path = /services/data/v59.0/sobjects/Opportunity/{{id}}
body = {"StageName": "Closed Won"}
reply = Approved {{id}}

[recipe reject]
command = reject
description = Reject an opportunity
app = salesforce
verify_user_access = true
params = id
method = PATCH
path = /services/data/v59.0/sobjects/Opportunity/{{id}}
body = {"StageName": "Closed Lost"}
reply = Rejected {{id}}

[recipe secret-report]
command = secret report
description = Only for U0001
app = salesforce
method = GET
path = /services/data/v59.0/secret
allowed_users = U0001
reply = Secret report

[recipe pipeline]
command = pipeline report
description = Team pipeline (shared account)
app = salesforce
method = GET
path = /services/data/v59.0/query
reply = Pipeline report ready
CONF
"$WORKBOT" run -c "$T/workbot.conf" --log-level debug 2>"$T/workbot.log" & WPID=$!
poll 100 live || bad "daemon not live: $(tail -5 "$T/workbot.log")"

ctl() { curl -s -m 5 -X POST "$FS/_control/$1" "${@:2}"; }
push() { # push TYPE key=value... -> envelope id
	local a args=(--data-urlencode "type=$1"); shift
	for a in "$@"; do args+=(--data-urlencode "$a"); done
	{ ctl push "${args[@]}"; echo; } | head -1 | sed -n 's/.*"envelope_id":"\([^"]*\)".*/\1/p'
}
# calls METHOD PYEXPR: evaluate PYEXPR over the list `c` of recorded calls of METHOD (bodies parsed)
calls() { curl -s "$FS/_control/calls?method=$1&limit=1000" | python3 -c '
import json, sys
c = [x for x in json.load(sys.stdin)["calls"]]
def text(x):
    b = x.get("body") or {}
    return json.dumps(b)
print(eval(sys.argv[1]))' "$2" 2>/dev/null || echo PYERR; }
ncalls() { calls "$1" "len(c)"; }
ncalls_ge() { [ "$(ncalls "$1")" -ge "$2" ]; }
last_body() { calls "$1" "json.dumps(c[-1]['body']) if c else ''"; }
# the url of the first url button in the last message of METHOD
last_button_url() { calls "$1" "[e['url'] for b in c[-1]['body'].get('blocks',[]) for e in (b.get('elements') or [b.get('accessory') or {}]) if isinstance(e, dict) and e.get('url')][0]"; }
resource_calls() { curl -s "$FO/_control/calls" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d.get("calls", d)))'; }
# n_resource METHOD PATH_PART: how many resource API calls match
n_resource() { resource_calls | python3 -c 'import json,sys; print(sum(1 for x in json.load(sys.stdin) if x["method"]==sys.argv[1] and sys.argv[2] in x["path"]))' "$1" "$2"; }
login_as() { # login_as URL ACCOUNT JAR: the user's browser logs in as ACCOUNT and presses Connect
	curl -s -X POST "$FO/_control/next_login" -d client_id=workbot-sf -d "account=$2" >/dev/null
	check "login link leads to the confirm page ($2)" "$(browse "$1" "$3")" 200
	grep -q "$2" "$T/page" && ok "confirm page names $2" || bad "confirm page: $(head -c 300 "$T/page")"
	check "Connect ($2)" "$(confirm connect "$3")" 200
}

case "$group" in
commands)
	n0=$(ncalls chat.postMessage)
	push message_im user=U0001 text=help event_id=EvHelp1 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n0 + 1)) && ok "help in a DM answers with a message" || bad "no help reply"
	b=$(last_body chat.postMessage)
	echo "$b" | grep -q 'create opportunity name=' && ok "help shows recipe usage" || bad "help: $b"
	echo "$b" | grep -q 'uses your own Salesforce account' && ok "help marks personal recipes" || bad "help personal: $b"
	echo "$b" | grep -q '"wb_accounts"' && ok "help has the Personal accounts button" || bad "no accounts button"
	e0=$(ncalls chat.postEphemeral)
	push app_mention user=U0001 text=connections channel=C0001 event_id=EvConn1 >/dev/null
	poll 50 ncalls_ge chat.postEphemeral $((e0 + 1)) && ok "connections in a channel is ephemeral" || bad "no ephemeral"
	b=$(last_body chat.postEphemeral)
	echo "$b" | grep -qi 'no personal connections' && ok "empty connections explained" || bad "connections: $b"
	echo "$b" | grep -q '"wb_connect"' && ok "Connect button for Salesforce" || bad "no connect button: $b"
	echo "$b" | grep -q '/oauth/start/' && bad "showing the view made a login link" || ok "no login is started just by showing the view"
	r1=$(ncalls response_url)
	push block_actions user=U0001 action_id=wb_connect value=salesforce channel=C0001 action_ts=1700000009.1 >/dev/null
	poll 50 ncalls_ge response_url $((r1 + 1)) || bad "no reply to Connect"
	b=$(last_body response_url)
	echo "$b" | grep -q 'Log in to Salesforce' && echo "$b" | grep -q '/oauth/start/' && echo "$b" | grep -q '"ephemeral"' \
		&& ok "Connect click answers privately with a Log in button" || bad "connect click: $b"
	check "ephemeral goes to the requester" "$(calls chat.postEphemeral "c[-1]['body'].get('user')")" U0001
	r0=$(ncalls response_url)
	push slash_command user=U0001 text=help >/dev/null
	poll 50 ncalls_ge response_url $((r0 + 1)) && ok "slash command answered through response_url" || bad "no response_url post"
	check "slash help is ephemeral" "$(calls response_url "c[-1]['body'].get('response_type')")" ephemeral
	n1=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=<!channel> do & things' event_id=EvUnk1 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n1 + 1)) || bad "no unknown-command reply"
	b=$(last_body chat.postMessage)
	echo "$b" | grep -q "I don't know that command" && ok "unknown command answered" || bad "unknown: $b"
	echo "$b" | grep -q '<!channel>' && bad "user text echoed unescaped" || ok "no <!channel> echoed"
	n2=$(ncalls chat.postMessage)
	push message_im user=W0003 user_team=T0999 text=help event_id=EvGuest1 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n2 + 1)) || bad "no guest reply"
	last_body chat.postMessage | grep -q 'only work for members' && ok "Slack Connect guest refused politely" || bad "guest: $(last_body chat.postMessage)"
	push message_im user=U0001 'text=create opportunity amount=5' event_id=EvUsage1 >/dev/null
	poll 50 eval '[ "$(last_body chat.postMessage | grep -c "Usage")" -ge 1 ]' && ok "missing parameter gets the usage line" || bad "usage: $(last_body chat.postMessage)"
	check "resource API untouched by bad parameters" "$(curl -s "$FO/_control/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("resource", 0))')" 0
	;;
personal)
	n0=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=create opportunity name="Acme Corp" amount=5000' event_id=EvOpp1 channel=D0001 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n0 + 1)) || bad "no login prompt"
	b=$(last_body chat.postMessage)
	echo "$b" | grep -q 'Log in to Salesforce' && ok "login prompt with a Log in button" || bad "prompt: $b"
	echo "$b" | grep -q 'runs as you in Salesforce' && ok "login prompt explains why" || bad "why: $b"
	echo "$b" | grep -q "$FO" && bad "provider URL posted in Slack" || ok "only workbot's own link in Slack"
	url=$(last_button_url chat.postMessage)
	login_as "$url" jane@acme.com jane
	poll 80 eval '[ "$(n_resource POST sobjects/Opportunity)" -ge 1 ]' && ok "command resumed by itself" || bad "not resumed"
	rc=$(resource_calls)
	echo "$rc" | python3 -c 'import json,sys; c=[x for x in json.load(sys.stdin) if "sobjects/Opportunity" in x["path"]][0]; assert c["account"]=="jane@acme.com", c; b=json.loads(c["body"]) if isinstance(c["body"], str) else c["body"]; assert b["Name"]=="Acme Corp" and b["Amount"]=="5000", b' \
		&& ok "the resource API saw jane's own account and the parameters" || bad "resource call: $rc"
	poll 50 eval 'calls chat.postMessage "[text(x) for x in c]" | grep -q "Connected to Salesforce as jane@acme.com"' && ok "DM: Connected to Salesforce as jane" || bad "no connected DM"
	poll 50 eval 'calls chat.postMessage "[text(x) for x in c]" | grep -q "Created opportunity \\*Acme Corp\\*"' && ok "recipe reply posted" || bad "no reply: $(last_body chat.postMessage)"
	reply=$(calls chat.postMessage "json.dumps([x for x in c if 'Created opportunity' in text(x)][-1])")
	echo "$reply" | grep -q 'wb_recipe:0' && ok "reply has the Approve button" || bad "buttons: $reply"
	ts=$(echo "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("ts") or "")')
	value=$(echo "$reply" | python3 -c 'import json,sys; x=json.load(sys.stdin)["body"]; print([e["value"] for b in x["blocks"] for e in b.get("elements",[]) if e.get("action_id")=="wb_recipe:0"][0])')
	echo "$value" | python3 -c 'import json,sys; v=json.load(sys.stdin); assert v["recipe"]=="approve" and v["params"]["id"].startswith("006"), v' \
		&& ok "button value is JSON {recipe, params}" || bad "value: $value"
	# Bob clicks Approve: he has no connection yet -> his own login, then the click resumes as Bob.
	r0=$(ncalls response_url)
	push block_actions user=U0002 action_id=wb_recipe:0 "value=$value" action_text=Approve channel=C0001 "message_ts=$ts" action_ts=1700000001.000100 >/dev/null
	poll 50 ncalls_ge response_url $((r0 + 1)) || bad "no login prompt for the approver"
	url=$(last_button_url response_url)
	login_as "$url" bob@acme.com bob
	grep -q 'Bob &lt;b&gt;Approver&lt;/b&gt;' "$T/page" && ! grep -q '<b>Approver' "$T/page" \
		&& ok "confirm page names the Slack user, HTML-escaped" || bad "real name on page: $(grep -o 'Slack user[^?]*' "$T/page")"
	grep -q "$PREFIX" "$T/page" "$T/page2" && bad "a token in a page" || ok "no token in the pages"
	poll 80 eval '[ "$(n_resource PATCH Opportunity)" -ge 1 ]' && ok "approval resumed after the approver's login" || bad "approval not run"
	resource_calls | python3 -c 'import json,sys; c=[x for x in json.load(sys.stdin) if x["method"]=="PATCH"][0]; assert c["account"]=="bob@acme.com", c' \
		&& ok "approval made with the approver's own account" || bad "approval account: $(resource_calls)"
	poll 50 eval 'calls chat.update "[text(x) for x in c]" | grep -q "Approved by <@U0002>"' && ok "message updated: Approved by <@U0002>" || bad "no update: $(last_body chat.update)"
	check "the update drops the buttons" "$(calls chat.update "sum(1 for x in c if 'wb_recipe' in text(x))")" 0
	out=$("$WORKBOT" connections list -c "$T/workbot.conf")
	echo "$out" | grep -qE '^T0001 +U0001 +salesforce +jane@acme.com +active' && echo "$out" | grep -qE '^T0001 +U0002 +salesforce +bob@acme.com' \
		&& ok "both personal connections stored" || bad "list: $out"
	grep -aq "$PREFIX" "$T/store/data.mdb" "$T/workbot.log" && bad "a token reached the log or the raw store" || ok "no token in the log or the raw store"
	calls chat.postMessage "[text(x) for x in c]" | grep -q "$PREFIX" && bad "a token reached Slack" || ok "no token in Slack messages"
	check "Block Kit validator reports nothing" "$(curl -s "$FS/_control/blockkit" | python3 -c 'import json,sys; print(json.load(sys.stdin)["violations"])')" 0
	last_used() { "$WORKBOT" connections list --json --user T0001:U0001 -c "$T/workbot.conf" | grep -q '"last_used":[[:space:]]*"20'; }
	poll 50 last_used && ok "last used recorded (written in batches)" || bad "last_used: $("$WORKBOT" connections list --json -c "$T/workbot.conf")"
	;;
disconnect)
	n0=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=approve id=006X' event_id=EvD1 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n0 + 1)) || bad "no prompt"
	login_as "$(last_button_url chat.postMessage)" jane@acme.com jane
	poll 80 eval '[ "$(n_resource PATCH Opportunity)" -ge 1 ]' || bad "not resumed"
	n1=$(ncalls chat.postMessage)
	push message_im user=U0001 text=connections event_id=EvD2 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n1 + 1)) || bad "no connections view"
	b=$(last_body chat.postMessage)
	echo "$b" | grep -q 'jane@acme.com' && echo "$b" | grep -q '"wb_disconnect"' && ok "connections view with Disconnect" || bad "view: $b"
	echo "$b" | grep -q '"confirm"' && ok "Disconnect asks for confirmation" || bad "no confirm dialog"
	# Another user clicks jane's Disconnect button: acts on the clicker's (empty) record only.
	u0=$(ncalls chat.update)
	push block_actions user=U0002 action_id=wb_disconnect value=salesforce channel=D0001 message_ts=1700000000.000200 action_ts=1700000002.1 >/dev/null
	poll 50 ncalls_ge chat.update $((u0 + 1)) || true
	"$WORKBOT" connections list -c "$T/workbot.conf" | grep -q 'U0001 .*salesforce' && ok "another user's click left jane's connection alone" || bad "jane's connection was removed"
	push block_actions user=U0001 action_id=wb_disconnect value=salesforce channel=D0001 message_ts=1700000000.000300 action_ts=1700000003.1 >/dev/null
	poll 50 eval 'calls chat.update "[text(x) for x in c]" | grep -q "Disconnected from Salesforce"' && ok "message updated: Disconnected from Salesforce" || bad "no update: $(last_body chat.update)"
	"$WORKBOT" connections list -c "$T/workbot.conf" | grep -q 'U0001 .*salesforce' && bad "still connected" || ok "connection deleted"
	curl -s "$FO/_control/revocations" | grep -q '"grant_ended":true' && ok "revoked at the provider" || bad "not revoked: $(curl -s "$FO/_control/revocations")"
	;;
shared)
	n0=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=pipeline report' event_id=EvS1 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n0 + 1)) || bad "no answer"
	last_body chat.postMessage | grep -q 'workbot connect salesforce --shared' && ok "missing shared connection explained" || bad "shared: $(last_body chat.postMessage)"
	curl -s -X POST "$FO/_control/next_login" -d client_id=workbot-sf -d account=admin@acme.com >/dev/null
	"$WORKBOT" connect salesforce --shared -c "$T/workbot.conf" >"$T/connect.out" 2>"$T/connect.err" &
	cpid=$!
	poll 100 grep -q /oauth/start/ "$T/connect.out" || bad "no shared link"
	browse "$(grep -o 'http://[^ ]*/oauth/start/[A-Za-z0-9_-]*' "$T/connect.out")" admin >/dev/null
	confirm connect admin >/dev/null
	wait "$cpid"; check "connect --shared" "$?" 0
	n1=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=pipeline report' event_id=EvS2 >/dev/null
	poll 50 eval 'calls chat.postMessage "[text(x) for x in c]" | grep -q "Pipeline report ready"' && ok "shared recipe replied" || bad "no reply"
	resource_calls | python3 -c 'import json,sys; c=[x for x in json.load(sys.stdin) if "query" in x["path"]][-1]; assert c["account"]=="admin@acme.com", c' \
		&& ok "shared recipe used the shared account" || bad "account: $(resource_calls)"
	;;
errors)
	# Jane connects once.
	n0=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=approve id=006A' event_id=EvE0 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n0 + 1)) || bad "no prompt"
	login_as "$(last_button_url chat.postMessage)" jane@acme.com jane
	poll 80 eval '[ "$(n_resource PATCH Opportunity)" -ge 1 ]' || bad "not resumed"
	# An app error reaches Slack as its status and error field, never the raw body.
	curl -s -X POST "$FO/_control/fail" -d endpoint=resource -d count=1 -d status=400 \
		--data-urlencode 'body=[{"errorCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [StageName]","internal":"RAWBODYMARK"}]' >/dev/null
	n1=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=create opportunity name=Broken' event_id=EvE1 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n1 + 1)) || bad "no error reply"
	b=$(last_body chat.postMessage)
	echo "$b" | grep -q 'Salesforce answered 400: REQUIRED_FIELD_MISSING: Required fields are missing' && ok "app 4xx shown with status and error field" || bad "4xx: $b"
	echo "$b" | grep -q RAWBODYMARK && bad "raw body shown" || ok "raw body not shown"
	curl -s -X POST "$FO/_control/fail" -d endpoint=resource -d count=1 -d status=503 >/dev/null
	n2=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=create opportunity name=Down' event_id=EvE2 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n2 + 1)) || bad "no 5xx reply"
	last_body chat.postMessage | grep -q 'Salesforce answered 503' && ok "app 5xx shown" || bad "5xx: $(last_body chat.postMessage)"
	# Hostile parameters stay inert: JSON-escaped in the body, mrkdwn-escaped in the reply.
	n3=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=create opportunity name="x\"}, \"StageName\": \"Won <!channel>"' event_id=EvE3 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n3 + 1)) || bad "no reply"
	resource_calls | python3 -c '
import json,sys
c=[x for x in json.load(sys.stdin) if "sobjects/Opportunity" in x["path"] and x["status"]==201][-1]
b=json.loads(c["body"]) if isinstance(c["body"], str) else c["body"]
assert b["StageName"]=="Prospecting" and b["Name"]=="x\"}, \"StageName\": \"Won <!channel>", b' && ok "template injection stays inside the string" || bad "body: $(resource_calls)"
	b=$(last_body chat.postMessage)
	echo "$b" | grep -q '<!channel>' && bad "<!channel> reached Slack unescaped" || ok "<!channel> escaped in the reply"
	check "Block Kit validator reports nothing" "$(curl -s "$FS/_control/blockkit" | python3 -c 'import json,sys; print(json.load(sys.stdin)["violations"])')" 0
	# After a restart the connection is used without a new login.
	kill -TERM "$WPID"; wait "$WPID"; WPID=
	"$WORKBOT" run -c "$T/workbot.conf" --log-level debug 2>>"$T/workbot.log" & WPID=$!
	poll 100 live || bad "not live after restart"
	p0=$(n_resource PATCH Opportunity)
	n4=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=approve id=006B' event_id=EvE4 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n4 + 1)) || bad "no reply after restart"
	last_body chat.postMessage | grep -q 'Approved 006B' && ok "after a restart: no new login, the recipe ran" || bad "after restart: $(last_body chat.postMessage)"
	[ "$(n_resource PATCH Opportunity)" -gt "$p0" ] && ok "resource API called after the restart" || bad "no call after restart"
	;;
more)
	# In a thread, answers go to that thread.
	n0=$(ncalls chat.postMessage)
	push message_im user=U0001 text=help thread_ts=1700000000.000500 event_id=EvM1 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n0 + 1)) || bad "no reply in thread"
	check "reply goes to the thread" "$(calls chat.postMessage "c[-1]['body'].get('thread_ts')")" 1700000000.000500
	# A personal recipe from a channel mention: the login link is ephemeral, never public.
	n1=$(ncalls chat.postMessage); e1=$(ncalls chat.postEphemeral)
	push app_mention user=U0001 channel=C0001 'text=create opportunity name=FromChannel' event_id=EvM2 >/dev/null
	poll 50 ncalls_ge chat.postEphemeral $((e1 + 1)) || bad "no ephemeral prompt"
	last_body chat.postEphemeral | grep -q 'Log in to Salesforce' && ok "login prompt in a channel is ephemeral" || bad "prompt: $(last_body chat.postEphemeral)"
	check "no public message with the link" "$(calls chat.postMessage "sum(1 for x in c[$n1:] if '/oauth/start/' in text(x))")" 0
	login_as "$(last_button_url chat.postEphemeral)" jane@acme.com jane
	poll 80 eval 'calls chat.postMessage "[text(x) for x in c]" | grep -q "Created opportunity \\*FromChannel\\*"' && ok "resumed reply posted in the channel" || bad "no channel reply"
	check "the reply is public in the channel" "$(calls chat.postMessage "[x['body'].get('channel') for x in c if 'FromChannel' in text(x)][-1]")" C0001
	# allowed_users: a polite refusal, nothing runs.
	n2=$(ncalls chat.postMessage); s0=$(n_resource GET secret)
	push message_im user=U0002 'text=secret report' event_id=EvM3 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((n2 + 1)) || bad "no refusal"
	last_body chat.postMessage | grep -q "can't run that command here" && ok "allowed_users refusal" || bad "refusal: $(last_body chat.postMessage)"
	check "refused recipe did not run" "$(n_resource GET secret)" "$s0"
	# Personal accounts button: the connections view, privately.
	r0=$(ncalls response_url)
	push block_actions user=U0001 action_id=wb_accounts channel=C0001 action_ts=1700000004.1 >/dev/null
	poll 50 ncalls_ge response_url $((r0 + 1)) || bad "no view"
	b=$(last_body response_url)
	echo "$b" | grep -q 'jane@acme.com' && echo "$b" | grep -q '"ephemeral"' && ok "Personal accounts shows the connections view, ephemeral" || bad "accounts: $b"
	# Audit: every run writes a "used" entry.
	"$SEED_STORE" "$T/store" "$T/master.key" audit >"$T/audit" 2>&1 || true
	grep -q '^used T0001 U0001 salesforce recipe create-opportunity' "$T/audit" && ok "audit has the use" || bad "audit: $(cat "$T/audit")"
	# The provider ends the grant: the next run finds the refresh refused, the connection expired.
	curl -s -X POST "$FO/_control/kill_grants" -d account=jane@acme.com >/dev/null
	e3=$(ncalls chat.postMessage)
	push message_im user=U0001 'text=approve id=006K' event_id=EvM4 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((e3 + 1)) || bad "no prompt after invalid_grant"
	last_body chat.postMessage | grep -q 'Log in to Salesforce' && ok "invalid_grant -> asked to log in again" || bad "after kill: $(last_body chat.postMessage)"
	"$WORKBOT" connections list -c "$T/workbot.conf" | grep -qE 'U0001 +salesforce +jane@acme.com +expired' && ok "connection kept, marked expired" || bad "state: $("$WORKBOT" connections list -c "$T/workbot.conf")"
	e4=$(ncalls chat.postMessage)
	push message_im user=U0001 text=connections event_id=EvM5 >/dev/null
	poll 50 ncalls_ge chat.postMessage $((e4 + 1)) || bad "no view"
	last_body chat.postMessage | grep -q 'Log in again' && ok "connections shows it expired with Log in again" || bad "view: $(last_body chat.postMessage)"
	# Log in again, then Disconnect while the provider's revoke fails: deleted anyway, and said so.
	last_body chat.postMessage | grep -q '"wb_connect"' && ok "Log in again starts a login on click" || bad "no wb_connect"
	r5=$(ncalls response_url)
	push block_actions user=U0001 action_id=wb_connect value=salesforce channel=D0001 action_ts=1700000006.1 >/dev/null
	poll 50 ncalls_ge response_url $((r5 + 1)) || true
	u=$(last_button_url response_url 2>/dev/null)
	case "$u" in http*) ;; *) u=$(last_button_url chat.postMessage) ;; esac
	login_as "$u" jane@acme.com jane2
	curl -s -X POST "$FO/_control/fail" -d endpoint=revoke -d count=1 -d status=500 >/dev/null
	u0=$(ncalls chat.update)
	push block_actions user=U0001 action_id=wb_disconnect value=salesforce channel=D0001 message_ts=1700000000.000900 action_ts=1700000005.1 >/dev/null
	poll 50 ncalls_ge chat.update $((u0 + 1)) || bad "no update"
	last_body chat.update | grep -q 'could not be revoked at Salesforce' && ok "failed revocation: deleted locally and said so" || bad "update: $(last_body chat.update)"
	"$WORKBOT" connections list -c "$T/workbot.conf" | grep -q 'U0001 .*salesforce' && bad "not deleted" || ok "deleted despite the failed revocation"
	;;
*) echo "unknown group $group"; exit 2 ;;
esac
kill -TERM "$WPID"; wait "$WPID"; rc=$?; WPID=
check "daemon exits 0" "$rc" 0
grep -aqE "$PREFIX|sf-secret-bot|xoxb-0001-fake" "$T/workbot.log" && bad "secret in the log" || ok "no secret in the log"
[ "$fail" -gt 0 ] && { echo "--- log"; grep -v 'route=/healthz' "$T/workbot.log" | tail -30; }
echo "# $group: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
