#!/usr/bin/env bash
# mailsrv in any language's test suite: start it on ephemeral ports, wait for the ready file,
# talk to it (here with curl: send by SMTP, read by POP3, IMAP and IMAPS), stop it with SIGTERM.
#
#   examples/ready_file.sh            # uses `mailsrv` from PATH; MAILSRV="python -m mailsrv" works too
set -euo pipefail

MAILSRV=${MAILSRV:-mailsrv}
work=$(mktemp -d)
server_pid=

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --ephemeral: every port 0; --dev: any password, mailboxes made on first use.
$MAILSRV serve --ephemeral --dev --no-http \
  --maildir "$work/mail" --certs "$work/certs" \
  --ready-file "$work/ready.json" >"$work/server.log" 2>&1 &
server_pid=$!

# The ready file appears (atomically, whole) once every listener is up.
for _ in $(seq 1 100); do
  [ -s "$work/ready.json" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "mailsrv exited before it was ready:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -s "$work/ready.json" ] || { echo "mailsrv was not ready after 10 s" >&2; exit 1; }

# The ready file is JSON: {"pid": ..., "host": ..., "ports": {"smtp": N, ...}, "ca_file": ...}.
port() { sed -n "s/.*\"$1\": \\([0-9][0-9]*\\).*/\\1/p" "$work/ready.json"; }
SMTP=$(port smtp)
POP3=$(port pop3)
IMAP=$(port imap)
IMAPS=$(port imaps)
CA="$work/certs/ca.pem"

printf 'From: bob@example.com\r\nTo: alice@localhost\r\nSubject: Hello from curl\r\n\r\nHi Alice!\r\n' \
  >"$work/mail.txt"
curl --silent --show-error --url "smtp://127.0.0.1:$SMTP" \
  --mail-from bob@example.com --mail-rcpt alice@localhost --upload-file "$work/mail.txt"

# POP3: message 1 of alice's INBOX. IMAP: UID 1 of INBOX, in plain text and over TLS.
curl --silent --show-error --user alice:secret "pop3://127.0.0.1:$POP3/1" >"$work/pop3.txt"
curl --silent --show-error --user alice:secret "imap://127.0.0.1:$IMAP/INBOX;UID=1" >"$work/imap.txt"
curl --silent --show-error --cacert "$CA" --user alice:secret \
  "imaps://localhost:$IMAPS/INBOX;UID=1" >"$work/imaps.txt"

for client in pop3 imap imaps; do
  if ! grep -q "Subject: Hello from curl" "$work/$client.txt"; then
    echo "$client did not return the message:" >&2
    cat "$work/$client.txt" >&2
    exit 1
  fi
done

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[ "$status" -eq 0 ] || { echo "mailsrv exited with $status" >&2; exit 1; }
echo "ok: sent by SMTP, read back by POP3, IMAP and IMAPS; mailsrv stopped cleanly"
