#!/usr/bin/env bash
# Starts the demo: the echo upstream on 127.0.0.1:8081 and Envoy with callback-guard on
# https://127.0.0.1:8443 and http://127.0.0.1:8080 (admin on 127.0.0.1:9901).
# Run from the repository root (`make run` does).
set -euo pipefail

export VOBIZ_AUTH_TOKEN="${VOBIZ_AUTH_TOKEN:-demo-auth-token}"
export VOBIZ_PARENT_AUTH_TOKEN="${VOBIZ_PARENT_AUTH_TOKEN:-demo-parent-token}"
export VOBIZ_WHATSAPP_SECRET="${VOBIZ_WHATSAPP_SECRET:-demo-whatsapp-secret}"
export STANDARD_WEBHOOKS_SECRET="${STANDARD_WEBHOOKS_SECRET:-whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ=}"
export SVIX_WEBHOOK_SECRET="${SVIX_WEBHOOK_SECRET:-whsec_ZGVtby1zdml4LXNlY3JldA==}"
export STRIPE_WEBHOOK_SECRET="${STRIPE_WEBHOOK_SECRET:-whsec_demo_stripe_secret}"
export GITHUB_WEBHOOK_SECRET="${GITHUB_WEBHOOK_SECRET:-demo-github-secret}"
export SLACK_SIGNING_SECRET="${SLACK_SIGNING_SECRET:-demo-slack-signing-secret}"
export TWILIO_AUTH_TOKEN="${TWILIO_AUTH_TOKEN:-demo-twilio-auth-token}"
export PLIVO_AUTH_TOKEN="${PLIVO_AUTH_TOKEN:-demo-plivo-auth-token}"
export SHOPIFY_WEBHOOK_SECRET="${SHOPIFY_WEBHOOK_SECRET:-demo-shopify-secret}"
export META_APP_SECRET="${META_APP_SECRET:-demo-meta-app-secret}"
export GENERIC_WEBHOOK_SECRET="${GENERIC_WEBHOOK_SECRET:-demo-generic-secret}"
venv=.venv
run=.run

mkdir -p "$run/tls"
# A fresh self-signed certificate for 127.0.0.1 at every start.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$run/tls/key.pem" -out "$run/tls/cert.pem" 2>/dev/null

"$venv/bin/python" envoy/demo_upstream.py --port 8081 &
upstream=$!
trap 'kill "$upstream" 2>/dev/null || true' EXIT

echo "callback-guard demo: https://127.0.0.1:8443 and http://127.0.0.1:8080 protect /vobiz/, /whatsapp/, /kyc/,"
echo "  /standard/, /svix/, /stripe/, /github/, /slack/, /twilio/, /plivo/, /shopify/, /meta/, /generic/ (Ctrl-C stops)"
"$venv/bin/envoy" -c envoy/envoy.yaml --concurrency 2 --disable-hot-restart --log-format '[%Y-%m-%d %T.%e][%l] %v' \
  --component-log-level wasm:info
