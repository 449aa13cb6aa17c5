#!/usr/bin/env bash
# Raw HTTP edge cases against the real binary (bash /dev/tcp and curl):
# malformed requests, unsupported versions and encodings, header and body
# limits (431, 413), chunked bodies, pipelining, keep-alive, Expect:
# 100-continue, HTTP/1.0, slowloris-style headers (408 and close), idle
# timeout, and --max-connections (503). Every case checks the status line
# and, where it matters, that the connection is closed or kept.
set -u
cd "$(dirname "$0")/../.."
BIN=${INFERD_BIN:-build/inferd}
MODEL=models/stories260K.gguf
TMP=$(mktemp -d)
PID=
fail=0

cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID"; wait "$PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

"$BIN" serve --model "$MODEL" --port 0 --threads 1 --kv-cache-memory 32M --no-access-log \
  --header-timeout 1 --idle-timeout 2 --max-connections 8 --max-body-bytes 65536 \
  --max-header-bytes 8192 >"$TMP/out" 2>"$TMP/err" &
PID=$!
for _ in $(seq 1 300); do
  grep -q "inferd: ready" "$TMP/out" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { echo "FAIL server exited: $(cat "$TMP/err")"; exit 1; }
  sleep 0.05
done
PORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\) .*/\1/p' "$TMP/out")
[ -n "$PORT" ] || { echo "FAIL no port in: $(cat "$TMP/out")"; exit 1; }
URL="http://127.0.0.1:$PORT"

# raw REQUEST_FILE [WAIT_S]: sends the bytes, prints everything the server
# sends back until it closes (or WAIT_S passes).
raw() {
  local wait=${2:-2}
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
  cat "$1" >&3
  timeout "$wait" cat <&3
  local rc=$?
  exec 3<&- 3>&-
  return $rc
}

# expect NAME REQUEST_FILE STATUS [closed|open]
expect() {
  local name=$1 req=$2 status=$3 conn=${4:-}
  # An open connection is seen as cat timing out (1 s, under --idle-timeout 2).
  raw "$req" "$([ "$conn" = open ] && echo 1 || echo 2)" >"$TMP/resp"
  local rc=$?
  local line
  line=$(head -n1 "$TMP/resp" | tr -d '\r')
  if [[ "$line" != "HTTP/1."?" $status "* ]]; then bad "$name" "got '$line', want $status"; return; fi
  if [ "$conn" = closed ] && [ $rc -eq 124 ]; then bad "$name" "connection left open"; return; fi
  if [ "$conn" = open ] && [ $rc -ne 124 ]; then bad "$name" "connection closed"; return; fi
  if [ "$status" -ge 400 ] && ! grep -q '"error":{"message":' "$TMP/resp"; then
    bad "$name" "no OpenAI-shaped error body"; return
  fi
  ok "$name"
}

printf 'GARBAGE\r\n\r\n' >"$TMP/r1"
expect "malformed request line -> 400, closed" "$TMP/r1" 400 closed

printf 'GET /health HTTP/2.0\r\nHost: x\r\n\r\n' >"$TMP/r2"
expect "unknown HTTP version -> 505" "$TMP/r2" 505 closed

printf 'GET /health HTTP/1.1\r\nHost x\r\n\r\n' >"$TMP/r3"
expect "header line without a colon -> 400" "$TMP/r3" 400 closed

printf 'GET /health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' "$(head -c 9000 /dev/zero | tr '\0' a)" >"$TMP/r4"
expect "header block over --max-header-bytes -> 431" "$TMP/r4" 431 closed

{ printf 'GET /health HTTP/1.1\r\n'; for i in $(seq 1 150); do printf 'X-H%d: v\r\n' "$i"; done; printf '\r\n'; } >"$TMP/r5"
expect "too many header lines -> 431" "$TMP/r5" 431 closed

printf 'POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n' >"$TMP/r6"
expect "Content-Length over --max-body-bytes -> 413 before the body" "$TMP/r6" 413 closed

printf 'POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n' >"$TMP/r7"
expect "Content-Length with Transfer-Encoding -> 400" "$TMP/r7" 400 closed

printf 'POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 12a\r\n\r\n' >"$TMP/r8"
expect "malformed Content-Length -> 400" "$TMP/r8" 400 closed

printf 'POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n' >"$TMP/r9"
expect "unknown Transfer-Encoding -> 501" "$TMP/r9" 501 closed

body='{"prompt":"Once upon a time"}'
printf 'POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n' \
  "${#body}" "$body" >"$TMP/r10"
expect "chunked request body -> 200, kept alive" "$TMP/r10" 200 open
grep -q '"tokens":\[1,' "$TMP/resp" || bad "chunked body content" "$(tail -n1 "$TMP/resp")"

{ printf 'POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
  for i in $(seq 1 20); do printf '1000\r\n%s\r\n' "$(head -c 4096 /dev/zero | tr '\0' a)"; done; } >"$TMP/r11"
expect "chunked body over --max-body-bytes -> 413" "$TMP/r11" 413 closed

printf 'GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\001b\r\n\r\n' >"$TMP/r12"
expect "control byte in a header value -> 400" "$TMP/r12" 400 closed

printf 'GET /health HTTP/1.0\r\n\r\n' >"$TMP/r13"
expect "HTTP/1.0 -> 1.0 reply, closed" "$TMP/r13" 200 closed
head -n1 "$TMP/resp" | grep '^HTTP/1.0 200' >/dev/null || bad "HTTP/1.0 status line" "$(head -n1 "$TMP/resp")"

printf 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMP/r14"
expect "unknown route -> 404, kept alive" "$TMP/r14" 404 open

# Pipelining: three requests in one write, three replies in order.
printf 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nPOST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%sGET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
  "${#body}" "$body" >"$TMP/r15"
raw "$TMP/r15" 3 >"$TMP/resp"
statuses=$(grep -c '^HTTP/1.1 200' "$TMP/resp")
order=$(grep -o '"status":"ok"\|"tokens"\|"version"' "$TMP/resp" | tr '\n' ' ')
if [ "$statuses" = 3 ] && [ "$order" = '"status":"ok" "tokens" "version" ' ]; then ok "pipelining: 3 replies in order"
else bad "pipelining" "statuses=$statuses order=$order"; fi

# Keep-alive: curl reuses one connection for two requests.
curl -sv "$URL/health" "$URL/version" -o /dev/null -o /dev/null 2>"$TMP/curl"
if grep -q "Re-using existing connection" "$TMP/curl"; then ok "keep-alive: connection reused"
else bad "keep-alive" "$(grep -i 'connect' "$TMP/curl" | head -3)"; fi

# Expect: 100-continue (curl sends it for bodies over 1 KiB).
big=$(printf '{"prompt":"%s"}' "$(head -c 3000 /dev/zero | tr '\0' a)")
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect: 100-continue' -d "$big" "$URL/tokenize")
[ "$code" = 200 ] && ok "Expect: 100-continue" || bad "Expect: 100-continue" "status $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @- "$URL/tokenize" < <(printf '{"prompt":"%s"}' "$(head -c 70000 /dev/zero | tr '\0' a)"))
[ "$code" = 413 ] && ok "curl: body over the limit -> 413" || bad "curl 413" "status $code"

# Slowloris: a header line every 0.4 s never completes; --header-timeout 1
# answers 408 and closes, while other clients are served meanwhile.
start=$(date +%s%3N)
{
  exec 4<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'GET /health HTTP/1.1\r\n' >&4
  for i in 1 2 3 4 5 6 7 8; do printf 'X-Slow-%d: v\r\n' "$i" >&4 2>/dev/null || break; sleep 0.4; done
  timeout 3 cat <&4 >"$TMP/slow"
  exec 4<&- 4>&-
} &
slow=$!
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")
[ "$code" = 200 ] && ok "served while a slow client trickles headers" || bad "served during slowloris" "status $code"
wait $slow
elapsed=$(( $(date +%s%3N) - start ))
if head -n1 "$TMP/slow" | grep '^HTTP/1.1 408' >/dev/null && [ "$elapsed" -lt 4500 ]; then
  ok "slowloris: 408 and closed after --header-timeout (${elapsed} ms with the trickle)"
else bad "slowloris" "reply '$(head -n1 "$TMP/slow")' after ${elapsed} ms"; fi

# Idle keep-alive connections are closed after --idle-timeout.
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
start=$(date +%s)
timeout 5 cat <&5 >/dev/null
rc=$?
exec 5<&- 5>&-
if [ $rc -ne 124 ] && [ $(( $(date +%s) - start )) -le 4 ]; then ok "idle connection closed by --idle-timeout"
else bad "idle timeout" "connection still open after 5 s"; fi

# --max-connections 8: eight idle connections are held, the ninth gets 503.
for fd in 10 11 12 13 14 15 16 17; do eval "exec $fd<>/dev/tcp/127.0.0.1/$PORT"; done
sleep 0.2
printf 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMP/r16"
expect "connection over --max-connections -> 503" "$TMP/r16" 503 closed
for fd in 10 11 12 13 14 15 16 17; do eval "exec $fd<&- $fd>&-"; done
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")
[ "$code" = 200 ] && ok "accepting again once connections close" || bad "after max-connections" "status $code"

# Still healthy and exits cleanly.
kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
[ $rc -eq 0 ] && ok "SIGTERM exit 0" || bad "SIGTERM exit" "rc $rc"
if grep -q "AddressSanitizer\|runtime error" "$TMP/err"; then bad "sanitizers" "$(grep -m3 'Sanitizer\|runtime error' "$TMP/err")"; fi

echo "test_http_raw: $fail failed"
[ $fail -eq 0 ]
