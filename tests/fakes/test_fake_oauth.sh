#!/bin/bash
# Self-test of the fake OAuth2 provider + Salesforce-like API: start it on
# port 0 and drive it with curl like a browser (authorize) and a client
# (token, refresh, revoke, userinfo, resource calls), plus its control API;
# then run the C helper's test. PKCE challenges are computed here with
# python's hashlib, independently of the fake's libsodium. Every wait is
# bounded; the run takes a few seconds. TAP-ish output; exit 0 when all pass.
#
#   test_fake_oauth.sh FAKE_OAUTH [TEST_FAKE_OAUTH_CLIENT]
set -u

FAKE=${1:?fake_oauth path}
CTEST=${2:-}
TMP=$(mktemp -d /tmp/fake_oauth_test.XXXXXX)
FPID=
n=0
failed=0

cleanup() {
	[ -n "$FPID" ] && kill "$FPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# got: ${2:0:600}"; }
check() { if [[ "$2" == *"$3"* ]]; then ok "$1"; else bad "$1" "$2"; fi; }
check_not() { if [[ "$2" != *"$3"* ]]; then ok "$1"; else bad "$1" "$2"; fi; }
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "$2 (want $3)"; fi; }

# pyenv shims cost ~0.4 s a call: prefer the system interpreter
PY=$(command -v /usr/bin/python3 || command -v python3)
jget() { "$PY" -c 'import json,sys
try:
    d = json.loads(sys.argv[1])
    v = eval(sys.argv[2], {"d": d})
    print(json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, list, bool)) or v is None else v)
except Exception as e:
    print("JGET-ERROR %s" % e)' "$1" "$2"; }

wait_for() {
	local i
	for ((i = 0; i < ${3:-50}; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# req CURL-ARGS...: sets ST (HTTP status) and BODY
req() { local out; out=$(curl -s -m 10 -w '\n%{http_code}' "$@"); ST=${out##*$'\n'}; BODY=${out%$'\n'*}; }
ctl() { local r=$1; shift; curl -s -m 10 -X POST "$@" "$B/_control/$r"; }
ctlget() { curl -s -m 10 "$B/_control/$1"; }
cnt() { jget "$(ctlget stats)" "d['counts'].get('$1', 0)"; }
# pkce: prints "VERIFIER CHALLENGE"
pkce() { "$PY" -c 'import secrets,hashlib,base64
v = secrets.token_urlsafe(48)
c = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()
print(v, c)'; }
qparam() { "$PY" -c 'import sys,urllib.parse as u
print(u.parse_qs(u.urlsplit(sys.argv[1]).query).get(sys.argv[2], [""])[0])' "$1" "$2"; }
sha12() { printf %s "$1" | sha256sum | cut -c1-12; }

RU="http://127.0.0.1:8085/oauth/callback"
# authorize CLIENT CHALLENGE STATE [extra curl args]: prints "STATUS LOCATION"
authorize() {
	local cid=$1 cc=$2 st=$3; shift 3
	curl -s -m 5 -o /dev/null -w '%{http_code} %{redirect_url}' -G "$B/authorize" \
		--data-urlencode response_type=code --data-urlencode "client_id=$cid" \
		--data-urlencode "redirect_uri=$RU" --data-urlencode "scope=${SCOPE:-api refresh_token}" \
		--data-urlencode "state=$st" --data-urlencode "code_challenge=$cc" \
		--data-urlencode code_challenge_method=S256 "$@"
}
# code_for CLIENT: runs authorize, sets VER and CODE
code_for() {
	local p loc
	p=$(pkce); VER=${p% *}; CC=${p#* }
	loc=$(authorize "$1" "$CC" "st-$RANDOM$RANDOM")
	CODE=$(qparam "${loc#* }" code)
}
# exchange CODE VERIFIER AUTHARGS...: token request, sets ST/BODY
exchange() {
	local code=$1 ver=$2; shift 2
	req -X POST "$B/token" --data-urlencode grant_type=authorization_code \
		--data-urlencode "code=$code" --data-urlencode "redirect_uri=$RU" \
		--data-urlencode "code_verifier=$ver" "$@"
}
refresh() { local rt=$1; shift; req -X POST "$B/token" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$rt" "$@"; }

# --- start on port 0 -------------------------------------------------------------
"$FAKE" --port 0 --max-runtime 120 > "$TMP/fake.out" 2> "$TMP/fake.err" &
FPID=$!
if wait_for "$TMP/fake.out" "PORT " 50; then ok "fake started"; else bad "fake started" "$(cat "$TMP/fake.err")"; exit 1; fi
PORT=$(awk '/^PORT /{print $2}' "$TMP/fake.out")
B="http://127.0.0.1:$PORT"
check "listens on 127.0.0.1 only" "$(ss -ltnH "sport = :$PORT" 2>/dev/null || echo 127.0.0.1:$PORT)" "127.0.0.1:$PORT"
check "health" "$(ctlget health)" "\"port\":$PORT"

# --- configure ---------------------------------------------------------------------
check "app: generic, basic auth" "$(ctl app -H 'Content-Type: application/json' \
	-d '{"client_id":"crm","client_secret":"s3cret","client_auth":"basic","scopes":"api refresh_token","issuer":"http://127.0.0.1/iss","token_prefix":"zqxCRM"}')" '"created":true'
BASIC=(-u crm:s3cret)
check "account profile" "$(ctl 'account?account=jane@acme.com&name=Jane%20Doe')" '"email":"jane@acme.com"'
check "next login queued" "$(ctl 'next_login?client_id=crm&account=jane@acme.com')" '"queued_logins":1'

# --- full code flow ------------------------------------------------------------------
p=$(pkce); VER=${p% *}; CC=${p#* }
loc=$(authorize crm "$CC" "state-123" --data-urlencode "prompt=consent")
check "authorize: 302" "${loc%% *}" "302"
LOC=${loc#* }
check "authorize: back to redirect_uri" "$LOC" "$RU?code="
CODE=$(qparam "$LOC" code)
check_eq "authorize: state echoed" "$(qparam "$LOC" state)" "state-123"
check_eq "authorize: iss added" "$(qparam "$LOC" iss)" "http://127.0.0.1/iss"
az=$(ctlget authorizations)
check "authorize recorded: account" "$az" '"account":"jane@acme.com"'
check "authorize recorded: extra params" "$az" '"extra":{"prompt":"consent"}'
check "authorize recorded: challenge" "$az" "\"code_challenge\":\"$CC\""
check "authorize recorded: code prefix" "$az" "\"code_prefix\":\"${CODE:0:6}\""
check_not "authorize record never holds the code" "$az" "$CODE"

exchange "$CODE" "$VER" "${BASIC[@]}"
check_eq "token: 200" "$ST" 200
TOK=$BODY
AT=$(jget "$TOK" 'd["access_token"]'); RT=$(jget "$TOK" 'd["refresh_token"]')
check "token: access token" "$AT" "zqxCRM-at-"
check "token: refresh token" "$RT" "zqxCRM-rt-"
check_eq "token: token_type Bearer" "$(jget "$TOK" 'd["token_type"]')" "Bearer"
check_eq "token: expires_in" "$(jget "$TOK" 'd["expires_in"]')" "3600"
check_eq "token: scope" "$(jget "$TOK" 'd["scope"]')" "api refresh_token"
check_eq "token: no instance_url for a generic app" "$(jget "$TOK" '"instance_url" in d')" "false"

exchange "$CODE" "$VER" "${BASIC[@]}"
check "code replay: invalid_grant" "$ST $BODY" '400 {"error":"invalid_grant"'
check_eq "code replay counted" "$(cnt token.code_replay)" 1

req -H "Authorization: Bearer $AT" "$B/userinfo"
check_eq "userinfo: 200" "$ST" 200
check "userinfo: email" "$BODY" '"email":"jane@acme.com"'
check "userinfo: preferred_username" "$BODY" '"preferred_username":"jane"'
check "userinfo: name" "$BODY" '"name":"Jane Doe"'
check "userinfo: opaque sub" "$BODY" '"sub":"opaque-'

req -X POST -H "Authorization: Bearer $AT" -H 'Content-Type: application/json' \
	-d '{"Name":"Big deal","StageName":"Prospecting"}' "$B/sf/services/data/v59.0/sobjects/Opportunity"
check_eq "resource: sobject create 201" "$ST" 201
check "resource: Salesforce answer" "$BODY" '"id":"006'
check "resource: success" "$BODY" '"success":true,"errors":[]'
req -H "Authorization: Bearer $AT" "$B/api/v1/things?x=1"
check "resource: generic path" "$ST $BODY" '200 {"ok":true,"method":"GET","path":"/api/v1/things"'
calls=$(ctlget calls)
check "calls: account recorded" "$(jget "$calls" 'd["calls"][0]["account"]')" "jane@acme.com"
check "calls: method+path" "$(jget "$calls" 'd["calls"][0]["method"]+" "+d["calls"][0]["path"]')" "POST /sf/services/data/v59.0/sobjects/Opportunity"
check "calls: body" "$(jget "$calls" 'd["calls"][0]["body"]')" '"StageName":"Prospecting"'
check "calls: query kept" "$(jget "$calls" 'd["calls"][1]["path"]')" "/api/v1/things?x=1"
check_eq "calls: token shown as hash only" "$(jget "$calls" 'd["calls"][0]["token_hash"]')" "$(sha12 "$AT")"
check_not "calls never hold the token" "$calls" "$AT"

req -H "Authorization: Bearer nope" "$B/sf/services/data/v59.0/limits"
check "resource: unknown token 401" "$ST $BODY" '401 [{"errorCode":"INVALID_SESSION_ID","message":"Session expired or invalid"}]'
check_eq "resource: refused call recorded without account" "$(jget "$(ctlget calls)" 'd["calls"][-1]["account"]')" "null"

# --- PKCE, client auth, authorize validation -----------------------------------------------
code_for crm
exchange "$CODE" "wrong-verifier-wrong-verifier-wrong-verifier-000" "${BASIC[@]}"
check "PKCE mismatch: invalid_grant" "$ST $BODY" '400 {"error":"invalid_grant","error_description":"PKCE verification failed"}'
exchange "$CODE" "$VER" "${BASIC[@]}"
check "code spent by the failed attempt" "$ST $BODY" '400 {"error":"invalid_grant"'
code_for crm
req -X POST "$B/token" --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE" \
	--data-urlencode "redirect_uri=$RU/other" --data-urlencode "code_verifier=$VER" "${BASIC[@]}"
check "redirect_uri must match" "$ST $BODY" '400 {"error":"invalid_grant"'
code_for crm
exchange "$CODE" "$VER" --data-urlencode client_id=crm --data-urlencode client_secret=s3cret
check "body auth on a basic client: invalid_client" "$ST $BODY" '401 {"error":"invalid_client"'
exchange "$CODE" "$VER" "${BASIC[@]}" --data-urlencode client_secret=s3cret
check "both auth methods: invalid_client" "$ST $BODY" '401 {"error":"invalid_client"'
exchange "$CODE" "$VER" -u crm:wrong
check "wrong secret: invalid_client" "$ST $BODY" '401 {"error":"invalid_client"'
check "invalid_client answers WWW-Authenticate" "$(curl -s -D - -o /dev/null -X POST -u crm:wrong -d grant_type=authorization_code "$B/token")" 'WWW-Authenticate: Basic'
exchange "$CODE" "$VER" "${BASIC[@]}"
check_eq "code not spent by client-auth failures" "$ST" 200
req -X POST "$B/token" -d grant_type=password "${BASIC[@]}"
check "unsupported grant type" "$ST $BODY" '400 {"error":"unsupported_grant_type"'
req -X POST "$B/token" -d 'grant_type=refresh_token&refresh_token=a&refresh_token=b' "${BASIC[@]}"
check "repeated parameter: invalid_request" "$ST $BODY" '400 {"error":"invalid_request"'

loc=$(authorize crm "$CC" "")
check "no state: invalid_request redirect" "$(qparam "${loc#* }" error)" "invalid_request"
loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$B/authorize?response_type=code&client_id=crm&redirect_uri=$RU&state=s&code_challenge=$CC&code_challenge_method=plain")
check "plain PKCE refused" "$(qparam "${loc#* }" error_description)" "S256"
check_eq "…with state" "$(qparam "${loc#* }" state)" "s"
loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$B/authorize?response_type=token&client_id=crm&redirect_uri=$RU&state=s&code_challenge=$CC&code_challenge_method=S256")
check "response_type=token refused" "$(qparam "${loc#* }" error)" "unsupported_response_type"
loc=$(authorize nobody "$CC" s)
check_eq "unknown client: 400, no redirect" "$loc" "400 "
loc=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -G "$B/authorize" --data-urlencode response_type=code \
	--data-urlencode client_id=crm --data-urlencode redirect_uri=https://evil.example/cb --data-urlencode state=s \
	--data-urlencode "code_challenge=$CC" --data-urlencode code_challenge_method=S256)
check_eq "non-loopback redirect_uri: 400, no redirect" "$loc" "400 "
loc=$(SCOPE=admin authorize crm "$CC" s)
check "scope outside the app's scopes" "$(qparam "${loc#* }" error)" "invalid_scope"

# a redirect_uri with its own (encoded) query: exact match, code appended with '&'
RU2='http://127.0.0.1:8085/cb?x=1&y=a%26b'
p=$(pkce); V2=${p% *}; C2=${p#* }
loc=$(curl -s -o /dev/null -w '%{redirect_url}' -G "$B/authorize" --data-urlencode response_type=code \
	--data-urlencode client_id=crm --data-urlencode "redirect_uri=$RU2" --data-urlencode state=q \
	--data-urlencode "code_challenge=$C2" --data-urlencode code_challenge_method=S256)
check "redirect_uri with a query keeps it" "$loc" "$RU2&code="
req -X POST "$B/token" --data-urlencode grant_type=authorization_code --data-urlencode "code=$(qparam "$loc" code)" \
	--data-urlencode "redirect_uri=$RU2" --data-urlencode "code_verifier=$V2" "${BASIC[@]}"
check_eq "…and its exchange works" "$ST" 200

# --- access_denied -----------------------------------------------------------------------------
ctl 'next_login?client_id=crm&deny=1' >/dev/null
loc=$(authorize crm "$CC" "deny-st")
check_eq "deny: error=access_denied" "$(qparam "${loc#* }" error)" "access_denied"
check_eq "deny: state kept" "$(qparam "${loc#* }" state)" "deny-st"
check_eq "deny: no code" "$(qparam "${loc#* }" code)" ""
check_eq "deny counted" "$(cnt authorize.access_denied)" 1
loc=$(authorize crm "$CC" "after")
check "next login approves again (default account)" "${loc#* }" "code="

# --- refresh: generic (same token), Box-like rotation -----------------------------------------------
refresh "$RT" "${BASIC[@]}"
check_eq "refresh: 200" "$ST" 200
check_eq "refresh (no rotation): same refresh token echoed" "$(jget "$BODY" 'd["refresh_token"]')" "$RT"
AT2=$(jget "$BODY" 'd["access_token"]')
check_not "refresh: new access token" "$AT2" "$AT"

ctl app -d client_id=box -d client_secret=bx -d client_auth=body -d style=box >/dev/null
BOXAUTH=(--data-urlencode client_id=box --data-urlencode client_secret=bx)
ctl 'next_login?client_id=box&account=bob@acme.com' >/dev/null
code_for box
exchange "$CODE" "$VER" "${BOXAUTH[@]}"
check_eq "box: body auth code exchange" "$ST" 200
BRT=$(jget "$BODY" 'd["refresh_token"]')
before=$(cnt token.refresh_token)
refresh "$BRT" "${BOXAUTH[@]}"
check_eq "box: refresh 200" "$ST" 200
BRT2=$(jget "$BODY" 'd["refresh_token"]')
check_not "box: refresh token rotated" "$BRT2" "$BRT"
check_eq "exactly one refresh request reached the provider" "$(cnt token.refresh_token)" $((before + 1))
refresh "$BRT" "${BOXAUTH[@]}"
check "box: old refresh token now invalid_grant" "$ST $BODY" '400 {"error":"invalid_grant","error_description":"refresh token rotated"}'
check_eq "box: reuse counted" "$(cnt token.refresh_reuse)" 1
refresh "$BRT2" "${BOXAUTH[@]}"
check_eq "box: new refresh token works" "$ST" 200
BRT2=$(jget "$BODY" 'd["refresh_token"]')
refresh "$BRT2" -u box:bx
check "box: basic auth on a body client refused" "$ST $BODY" '401 {"error":"invalid_client"'
BAT=$(jget "$BODY" 'd.get("access_token","")')
tr=$(ctlget token_requests)
check "token requests recorded with account" "$tr" '"grant_type":"refresh_token","client_id":"box","client_auth":"body","outcome":"ok","account":"bob@acme.com"'
check_not "token request records hold no token" "$tr" "$BRT2"

# --- Salesforce-like ------------------------------------------------------------------------------------
ctl app -d client_id=sf -d client_secret=sfs -d style=salesforce -d token_prefix=zqxSF >/dev/null
code_for sf
exchange "$CODE" "$VER" -u sf:sfs
check_eq "salesforce: 200" "$ST" 200
check_eq "salesforce: no expires_in" "$(jget "$BODY" '"expires_in" in d')" "false"
check_eq "salesforce: instance_url" "$(jget "$BODY" 'd["instance_url"]')" "$B/sf"
check "salesforce: issued_at" "$BODY" '"issued_at":"'
SRT=$(jget "$BODY" 'd["refresh_token"]'); SAT=$(jget "$BODY" 'd["access_token"]')
refresh "$SRT" -u sf:sfs
check_eq "salesforce: refresh 200" "$ST" 200
check_eq "salesforce: refresh answer omits refresh_token" "$(jget "$BODY" '"refresh_token" in d')" "false"
refresh "$SRT" -u sf:sfs
check_eq "salesforce: the same refresh token keeps working" "$ST" 200
SAT2=$(jget "$BODY" 'd["access_token"]')
req -H "Authorization: Bearer $SAT2" -X PATCH -H 'Content-Type: application/json' -d '{"StageName":"Closed Won"}' \
	"$B/sf/services/data/v59.0/sobjects/Opportunity/006FAK000000001"
check "salesforce: PATCH elsewhere answers 200 ok" "$ST $BODY" '200 {"ok":true,"method":"PATCH"'

# --- expiry ------------------------------------------------------------------------------------------------
ctl app -d client_id=short -d client_secret=sh -d expires_in=2 >/dev/null
code_for short
exchange "$CODE" "$VER" -u short:sh
check_eq "short-lived: expires_in 2" "$(jget "$BODY" 'd["expires_in"]')" 2
XAT=$(jget "$BODY" 'd["access_token"]')
req -H "Authorization: Bearer $XAT" "$B/sf/x"
check_eq "short-lived: valid at first" "$ST" 200
sleep 2.1
req -H "Authorization: Bearer $XAT" "$B/sf/x"
check "short-lived: really expires (401)" "$ST $BODY" '401 [{"errorCode":"INVALID_SESSION_ID"'
req -H "Authorization: Bearer $XAT" "$B/userinfo"
check "userinfo refuses it too" "$ST $BODY" '401 {"error":"invalid_token"'

check "expire now (sf account jane)" "$(ctl 'expire?client_id=sf')" '"expired":'
req -H "Authorization: Bearer $SAT2" "$B/sf/y"
check_eq "expired by control: 401" "$ST" 401
refresh "$SRT" -u sf:sfs
check_eq "…and a refresh brings it back" "$ST" 200

# --- revoke ----------------------------------------------------------------------------------------------------
req -X POST "$B/revoke" --data-urlencode "token=$AT2" -d token_type_hint=access_token "${BASIC[@]}"
check_eq "revoke access token: 200" "$ST" 200
req -H "Authorization: Bearer $AT2" "$B/sf/z"
check_eq "revoked access token: 401" "$ST" 401
req -H "Authorization: Bearer $AT" "$B/sf/z"
check_eq "other access token of the grant still works" "$ST" 200
req -X POST "$B/revoke" --data-urlencode "token=$RT" -d token_type_hint=refresh_token "${BASIC[@]}"
check_eq "revoke refresh token: 200" "$ST" 200
req -H "Authorization: Bearer $AT" "$B/sf/z"
check "revoked grant: its access token 401" "$ST $BODY" '401 [{"errorCode":"INVALID_SESSION_ID"'
refresh "$RT" "${BASIC[@]}"
check "revoked grant: refresh invalid_grant" "$ST $BODY" '400 {"error":"invalid_grant"'
req -X POST "$B/revoke" -d token=never-issued "${BASIC[@]}"
check_eq "revoke unknown token: 200 (RFC 7009)" "$ST" 200
req -X POST "$B/revoke" --data-urlencode "token=$SRT" "${BASIC[@]}"
check "revoke another client's token refused" "$ST $BODY" '400 {"error":"unauthorized_client"'
req -X POST "$B/revoke" --data-urlencode "token=$SRT" -u sf:wrong
check_eq "revoke: client auth checked" "$ST" 401
rv=$(ctlget revocations)
check "revocations: access token recorded" "$(jget "$rv" 'd["revocations"][0]')" '"token_type":"access_token"'
check "revocations: refresh token ends the grant" "$(jget "$rv" 'd["revocations"][1]')" '"token_type":"refresh_token"'
check "revocations: …with account" "$(jget "$rv" 'd["revocations"][1]')" '"account":"jane@acme.com"'
check "revocations: …grant_ended" "$(jget "$rv" 'd["revocations"][1]')" '"grant_ended":true'
check_eq "revocations: hash only" "$(jget "$rv" 'd["revocations"][1]["token_hash"]')" "$(sha12 "$RT")"
check "revocations: unknown token" "$(jget "$rv" 'd["revocations"][2]')" '"token_type":"unknown"'
check_not "revocations hold no token" "$rv" "$RT"

# --- provider-side invalidation ---------------------------------------------------------------------------------
check "kill_grants (user revoked the app at the provider)" "$(ctl 'kill_grants?client_id=sf')" '"grants":1'
refresh "$SRT" -u sf:sfs
check "killed grant: invalid_grant" "$ST $BODY" '400 {"error":"invalid_grant"'

# --- failure injection --------------------------------------------------------------------------------------------
refresh "$BRT2" "${BOXAUTH[@]}"; BRT3=$(jget "$BODY" 'd["refresh_token"]')
ctl 'fail?endpoint=token&count=1&status=500' >/dev/null
refresh "$BRT3" "${BOXAUTH[@]}"
check "injected 500 on token" "$ST $BODY" '500 {"error":"server_error"'
refresh "$BRT3" "${BOXAUTH[@]}"
check_eq "…only for the next call (token not consumed by it)" "$ST" 200
BRT4=$(jget "$BODY" 'd["refresh_token"]')
ctl 'fail?endpoint=token&grant_type=refresh_token&error=invalid_grant' >/dev/null
refresh "$BRT4" "${BOXAUTH[@]}"
check "invalid_grant on demand" "$ST $BODY" '400 {"error":"invalid_grant","error_description":"injected by the test"}'
ctl 'fail?endpoint=token&hang_ms=800' >/dev/null
t0=$(date +%s%N)
refresh "$BRT4" "${BOXAUTH[@]}"
el=$((($(date +%s%N) - t0) / 1000000))
if [ "$ST" = 200 ] && [ "$el" -ge 750 ]; then ok "hang 800 ms, then the normal answer (${el} ms)"; else bad "hang then answer" "$ST after $el ms"; fi
BRT5=$(jget "$BODY" 'd["refresh_token"]')
ctl 'fail?endpoint=token&hang_ms=3000&status=503' >/dev/null
curl -s -m 0.5 -o /dev/null -X POST "$B/token" -d grant_type=refresh_token --data-urlencode "refresh_token=$BRT5" "${BOXAUTH[@]}"
check_eq "hang: the client times out (curl exit 28)" "$?" 28
refresh "$BRT5" "${BOXAUTH[@]}"
check_eq "a timed-out hung request was never processed" "$ST" 200
check_eq "hangs counted" "$(cnt hung.token)" 2
ctl 'fail?endpoint=revoke&status=500' >/dev/null
req -X POST "$B/revoke" -d token=x "${BOXAUTH[@]}"
check_eq "injected 500 on revoke" "$ST" 500
ctl 'fail?endpoint=userinfo&status=502' >/dev/null
req -H "Authorization: Bearer $XAT" "$B/userinfo"
check_eq "injected 502 on userinfo" "$ST" 502
ctl 'fail?endpoint=authorize&status=500' >/dev/null
loc=$(authorize crm "$CC" s)
check_eq "injected 500 on authorize" "$loc" "500 "

ctl app -d client_id=sf2 -d client_secret=x -d style=salesforce >/dev/null
ctl 'next_login?client_id=sf2&account=sam@acme.com' >/dev/null
code_for sf2; exchange "$CODE" "$VER" -u sf2:x; S2AT=$(jget "$BODY" 'd["access_token"]')
ctl fail -H 'Content-Type: application/json' -d '{"endpoint":"resource","count":2,"status":400,"body":"[{\"errorCode\":\"REQUIRED_FIELD_MISSING\",\"message\":\"Required fields are missing: [StageName]\"}]"}' >/dev/null
req -X POST -H "Authorization: Bearer $S2AT" -H 'Content-Type: application/json' -d '{"Name":"x"}' "$B/sf/services/data/v59.0/sobjects/Opportunity"
check "resource: injected app error" "$ST $BODY" '400 [{"errorCode":"REQUIRED_FIELD_MISSING"'
req -X POST -H "Authorization: Bearer $S2AT" -d '{}' "$B/sf/services/data/v59.0/sobjects/Opportunity"
check_eq "resource: …count 2" "$ST" 400
req -X POST -H "Authorization: Bearer $S2AT" -d '{}' "$B/sf/services/data/v59.0/sobjects/Opportunity"
check_eq "resource: then normal again" "$ST" 201
check "injected calls recorded with account and status" "$(ctlget 'calls?account=sam@acme.com')" '"account":"sam@acme.com","client_id":"sf2","method":"POST","path":"/sf/services/data/v59.0/sobjects/Opportunity","content_type":"application/json","body":"{\"Name\":\"x\"}","body_truncated":false,"status":400'
ctl 'fail?endpoint=resource&status=401' >/dev/null
req -H "Authorization: Bearer $S2AT" "$B/sf/q"
check "resource: injected 401 has the Salesforce body" "$ST $BODY" '401 [{"errorCode":"INVALID_SESSION_ID"'
ctl 'fail?endpoint=resource&hang_ms=300' >/dev/null
req -H "Authorization: Bearer $S2AT" "$B/sf/slow"
check_eq "resource: hang then 200" "$ST" 200
check "fail: bad endpoint refused" "$(ctl 'fail?endpoint=nope')" '"ok":false'
check "app: bad value refused" "$(ctl 'app?client_id=bad&client_auth=jwt')" '"ok":false'
check_not "…and nothing created" "$(ctlget apps)" '"client_id":"bad"'

# --- userinfo label fallback --------------------------------------------------------------------------------------
ctl 'account?account=sam@acme.com&omit=email' >/dev/null
req -H "Authorization: Bearer $S2AT" "$B/userinfo"
check_not "userinfo: email omitted on demand" "$BODY" '"email"'
check "userinfo: preferred_username still there" "$BODY" '"preferred_username":"sam"'
ctl 'account?account=sam@acme.com&omit=email,preferred_username' >/dev/null
req -H "Authorization: Bearer $S2AT" "$B/userinfo"
check "userinfo: name only" "$BODY" '"name":"Sam Doe"}'

# --- no refresh token issued ---------------------------------------------------------------------------------------
ctl app -d client_id=norefresh -d client_secret=n -d issue_refresh=0 >/dev/null
code_for norefresh; exchange "$CODE" "$VER" -u norefresh:n
check_eq "issue_refresh=0: no refresh_token" "$(jget "$BODY" '"refresh_token" in d')" "false"

# --- HTTP details ----------------------------------------------------------------------------------------------------
two=$(curl -s -m 5 "$B/_control/health" "$B/_control/health")
check_eq "keep-alive: two requests on one connection" "$(grep -o '"ok":true' <<<"$two" | wc -l)" 2
big=$(head -c 3000 /dev/zero | tr '\0' 'a')
req -X POST -H "Authorization: Bearer $S2AT" -H 'Content-Type: text/plain' --data-binary "$big" "$B/api/big"
check_eq "Expect: 100-continue body (3000 bytes)" "$ST" 200
check_eq "…recorded whole" "$(jget "$(ctlget 'calls?account=sam@acme.com')" 'len(d["calls"][-1]["body"])')" 3000
req "$B/nothing"
check_eq "unknown path 404" "$ST" 404
req -X GET "$B/token"
check_eq "GET /token 405" "$ST" 405
req -X POST -H 'Content-Type: application/json' -d '{}' "$B/token"
check "token wants a form" "$ST $BODY" '400 {"error":"invalid_request"'
check "token aliases at Salesforce's path" "$(curl -s -X POST -u sf:sfs -d grant_type=x "$B/services/oauth2/token")" 'unsupported_grant_type'

# --- counters, listings, reset ----------------------------------------------------------------------------------------
st=$(ctlget stats)
# every authorize request is counted; all but the injected 500 are recorded
check_eq "stats: authorize requests counted" "$(jget "$st" 'd["counts"]["authorize"]')" "$(jget "$(ctlget authorizations)" 'len(d["authorizations"])+1')"
check "stats: live tokens" "$st" '"live":{'
tk=$(ctlget 'tokens?client_id=box')
check "tokens listing: hashes and states" "$tk" '"state":"rotated"'
check_not "tokens listing holds no token" "$tk" "$BRT5"
check "reset" "$(ctl reset)" '"ok":true'
check "reset forgets apps" "$(ctlget apps)" '"apps":[]'
check_eq "reset zeroes counters" "$(cnt token)" 0
check_not "stderr never shows a token" "$(cat "$TMP/fake.err")" "zqx"

# --- C helper -----------------------------------------------------------------------------------------------------------
if [ -n "$CTEST" ]; then
	if out=$("$CTEST" "$FAKE" 2>&1); then ok "C client test"; else bad "C client test" "$out"; fi
	echo "$out" | sed 's/^/#   /'
fi

# --- clean exit --------------------------------------------------------------------------------------------------------
kill -TERM "$FPID"
rc=124
for ((i = 0; i < 100; i++)); do
	if ! kill -0 "$FPID" 2>/dev/null; then wait "$FPID"; rc=$?; break; fi
	sleep 0.1
done
FPID=
if [ "$rc" = 0 ]; then ok "SIGTERM: clean exit"; else bad "SIGTERM: clean exit (rc=$rc)" "$(tail -20 "$TMP/fake.err")"; fi

echo "1..$n"
[ "$failed" = 0 ]
