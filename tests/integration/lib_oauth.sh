# Shared by test_oauth.sh and test_bot.sh (sourced, not run): a temp dir,
# TAP-ish ok/bad/check, bounded polling, the fake Slack and the fake OAuth
# provider on 127.0.0.1, the common workbot.conf, and curl as a browser.
# The caller sets PREFIX (a distinctive token prefix) and WB_SF_SECRET first,
# and sets WPID / CPID for processes it starts (killed on exit).
: "${WORKBOT:?}" "${FAKE_SLACK:?}" "${FAKE_OAUTH:?}" "${PREFIX:?}" "${WB_SF_SECRET:?}"

T=$(mktemp -d)
chmod 700 "$T"
FPID= OPID= WPID= CPID=
pass=0 fail=0
cleanup() {
	for p in $CPID $WPID; do kill -9 "$p" 2>/dev/null; done
	for p in $FPID $OPID; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ok()  { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }
poll() { local n=$1 i; shift; for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
has_port() { grep -q '^PORT ' "$1"; }

"$FAKE_SLACK" --port 0 >"$T/fs.out" 2>"$T/fs.err" & FPID=$!
"$FAKE_OAUTH" --port 0 >"$T/fo.out" 2>"$T/fo.err" & OPID=$!
poll 50 has_port "$T/fs.out" && poll 50 has_port "$T/fo.out" || { bad "fakes did not start"; exit 1; }
FS="http://127.0.0.1:$(awk '/^PORT /{print $2}' "$T/fs.out")"
FO="http://127.0.0.1:$(awk '/^PORT /{print $2}' "$T/fo.out")"
LP=$(free_port)
export WB_APP_TOKEN=xapp-1-A0FAKEAPP01-1-fake WB_BOT_TOKEN=xoxb-0001-fake WB_SF_SECRET

# fake_app DEFAULT_ACCOUNT: the provider's Salesforce-like app (basic client auth).
fake_app() {
	curl -s -X POST "$FO/_control/app" -d client_id=workbot-sf --data-urlencode "client_secret=$WB_SF_SECRET" \
		-d client_auth=basic -d style=salesforce -d token_prefix="$PREFIX" -d default_account="$1" >/dev/null
}

# The config every group starts from: [slack], [store], [listener], [app salesforce].
write_conf() {
	cat >"$T/workbot.conf" <<CONF
[slack]
app_token = env:WB_APP_TOKEN
bot_token = env:WB_BOT_TOKEN
api_url = $FS/api/
ping_interval = 1

[store]
path = $T/store
key_file = $T/master.key
map_size = 16MiB

[listener]
bind = 127.0.0.1:$LP
public_url = http://127.0.0.1:$LP

[app salesforce]
title = Salesforce
auth = oauth2
client_id = workbot-sf
client_secret = env:WB_SF_SECRET
authorize_url = $FO/services/oauth2/authorize
token_url = $FO/services/oauth2/token
revoke_url = $FO/services/oauth2/revoke
userinfo_url = $FO/services/oauth2/userinfo
scopes = api refresh_token
api_url = $FO/sf
client_auth = basic
CONF
	"$WORKBOT" keygen -o "$T/master.key" >/dev/null
}

live() { curl -s "http://127.0.0.1:$LP/healthz" | grep -q '"sockets_live":[12]'; }

# The browser: browse URL [JAR] follows redirects with cookies kept and
# saves the final page ($T/page, headers $T/headers); confirm ACTION [JAR]
# posts the confirm form of that page ($T/page2, $T/headers2).
browse() { curl -s -L --max-redirs 5 -c "$T/jar.${2:-b}" -b "$T/jar.${2:-b}" -D "$T/headers" -o "$T/page" -w '%{http_code}' "$1"; }
form_field() { sed -n "s/.*name=\"$1\" value=\"\\([^\"]*\\)\".*/\\1/p" "$T/page" | head -1; }
confirm() {
	curl -s -c "$T/jar.${2:-b}" -b "$T/jar.${2:-b}" -D "$T/headers2" -o "$T/page2" -w '%{http_code}' \
		--data-urlencode "id=$(form_field id)" --data-urlencode "form_token=$(form_field form_token)" \
		--data-urlencode "action=$1" "http://127.0.0.1:$LP/oauth/confirm"
}
