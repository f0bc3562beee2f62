#!/usr/bin/env bash
# Starts the demo: the echo upstream on 127.0.0.1:8081 (and SNS's and PayPal's demo certificates on :8082)
# and Envoy with callback-guard on https://127.0.0.1:8443 and http://127.0.0.1:8080 (admin on
# 127.0.0.1:9901).
# Run from the repository root (`make run` does).
set -euo pipefail

# BEGIN generated from envoy/routes/routes.yaml by make manifests (exports): do not edit
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
export META_VERIFY_TOKEN="${META_VERIFY_TOKEN:-demo-meta-verify-token}"
export TELNYX_PUBLIC_KEY="${TELNYX_PUBLIC_KEY:-A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=}"
export DISCORD_PUBLIC_KEY="${DISCORD_PUBLIC_KEY:-03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8}"
export SENDGRID_PUBLIC_KEY="${SENDGRID_PUBLIC_KEY:-MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERxw+dYxJBChbun5TEY7Q9SSt6wdX0lvS+Oew1236cUzdUg96yoqLkXrMN/Ud6PDJu+OthYOC5wLcJaEtCfeoWA==}"
export CLERK_WEBHOOK_SECRET="${CLERK_WEBHOOK_SECRET:-whsec_ZGVtby1jbGVyay13ZWJob29rLXNlY3JldA==}"
export RESEND_WEBHOOK_SECRET="${RESEND_WEBHOOK_SECRET:-whsec_ZGVtby1yZXNlbmQtd2ViaG9vay1zZWNyZXQ=}"
export MAILGUN_SIGNING_KEY="${MAILGUN_SIGNING_KEY:-demo-mailgun-signing-key}"
export RAZORPAY_WEBHOOK_SECRET="${RAZORPAY_WEBHOOK_SECRET:-demo-razorpay-secret}"
export PADDLE_WEBHOOK_SECRET="${PADDLE_WEBHOOK_SECRET:-pdl_ntfset_demo_paddle_secret}"
export SQUARE_SIGNATURE_KEY="${SQUARE_SIGNATURE_KEY:-demo-square-signature-key}"
export HUBSPOT_CLIENT_SECRET="${HUBSPOT_CLIENT_SECRET:-demo-hubspot-client-secret}"
export LINEAR_WEBHOOK_SECRET="${LINEAR_WEBHOOK_SECRET:-lin_wh_demo_linear_secret}"
export ZOOM_SECRET_TOKEN="${ZOOM_SECRET_TOKEN:-demo-zoom-secret-token}"
export PAGERDUTY_WEBHOOK_SECRET="${PAGERDUTY_WEBHOOK_SECRET:-demo-pagerduty-secret}"
export INTERCOM_CLIENT_SECRET="${INTERCOM_CLIENT_SECRET:-demo-intercom-client-secret}"
export TWITCH_EVENTSUB_SECRET="${TWITCH_EVENTSUB_SECRET:-demo-twitch-eventsub-secret}"
export BITBUCKET_WEBHOOK_SECRET="${BITBUCKET_WEBHOOK_SECRET:-demo-bitbucket-secret}"
export XERO_WEBHOOK_KEY="${XERO_WEBHOOK_KEY:-demo-xero-webhook-key}"
export DROPBOX_APP_SECRET="${DROPBOX_APP_SECRET:-demo-dropbox-app-secret}"
export TWITTER_CONSUMER_SECRET="${TWITTER_CONSUMER_SECRET:-demo-twitter-consumer-secret}"
export BOX_PRIMARY_KEY="${BOX_PRIMARY_KEY:-demo-box-primary-key}"
export BOX_SECONDARY_KEY="${BOX_SECONDARY_KEY:-demo-box-secondary-key}"
export DOCUSIGN_HMAC_KEY="${DOCUSIGN_HMAC_KEY:-demo-docusign-hmac-key}"
export WORLDLINE_WEBHOOK_SECRET="${WORLDLINE_WEBHOOK_SECRET:-demo-worldline-secret}"
export TYPEFORM_WEBHOOK_SECRET="${TYPEFORM_WEBHOOK_SECRET:-demo-typeform-secret}"
export SENTRY_WEBHOOK_SECRET="${SENTRY_WEBHOOK_SECRET:-demo-sentry-secret}"
export BUILDKITE_WEBHOOK_SECRET="${BUILDKITE_WEBHOOK_SECRET:-demo-buildkite-secret}"
export CIRCLECI_WEBHOOK_SECRET="${CIRCLECI_WEBHOOK_SECRET:-demo-circleci-secret}"
export MUX_WEBHOOK_SECRET="${MUX_WEBHOOK_SECRET:-demo-mux-secret}"
export FRAMEIO_WEBHOOK_SECRET="${FRAMEIO_WEBHOOK_SECRET:-demo-frameio-secret}"
export HEROKU_WEBHOOK_SECRET="${HEROKU_WEBHOOK_SECRET:-demo-heroku-secret}"
export LAUNCH_DARKLY_WEBHOOK_SECRET="${LAUNCH_DARKLY_WEBHOOK_SECRET:-demo-launch-darkly-secret}"
export TERRAFORM_WEBHOOK_SECRET="${TERRAFORM_WEBHOOK_SECRET:-demo-terraform-secret}"
export WEBEX_WEBHOOK_SECRET="${WEBEX_WEBHOOK_SECRET:-demo-webex-secret}"
export TIKTOK_WEBHOOK_SECRET="${TIKTOK_WEBHOOK_SECRET:-demo-tiktok-secret}"
export MAILCHIMP_WEBHOOK_SECRET="${MAILCHIMP_WEBHOOK_SECRET:-demo-mailchimp-secret}"
export MODERN_TREASURY_WEBHOOK_SECRET="${MODERN_TREASURY_WEBHOOK_SECRET:-demo-modern-treasury-secret}"
export MONGODB_WEBHOOK_SECRET="${MONGODB_WEBHOOK_SECRET:-demo-mongodb-secret}"
export ORB_WEBHOOK_SECRET="${ORB_WEBHOOK_SECRET:-demo-orb-secret}"
export PINWHEEL_WEBHOOK_SECRET="${PINWHEEL_WEBHOOK_SECRET:-demo-pinwheel-secret}"
export PUSHER_WEBHOOK_SECRET="${PUSHER_WEBHOOK_SECRET:-demo-pusher-secret}"
export SONATYPE_WEBHOOK_SECRET="${SONATYPE_WEBHOOK_SECRET:-demo-sonatype-secret}"
export ALCHEMY_WEBHOOK_SECRET="${ALCHEMY_WEBHOOK_SECRET:-demo-alchemy-secret}"
export AUTODESK_WEBHOOK_SECRET="${AUTODESK_WEBHOOK_SECRET:-demo-autodesk-secret}"
export AFTERSHIP_WEBHOOK_SECRET="${AFTERSHIP_WEBHOOK_SECRET:-demo-aftership-secret}"
export CASTLE_WEBHOOK_SECRET="${CASTLE_WEBHOOK_SECRET:-demo-castle-secret}"
export CHARGIFY_WEBHOOK_SECRET="${CHARGIFY_WEBHOOK_SECRET:-demo-chargify-secret}"
export CLEARBIT_WEBHOOK_SECRET="${CLEARBIT_WEBHOOK_SECRET:-demo-clearbit-secret}"
export JIRA_WEBHOOK_SECRET="${JIRA_WEBHOOK_SECRET:-demo-jira-secret}"
export MICROSOFT_TEAMS_WEBHOOK_SECRET="${MICROSOFT_TEAMS_WEBHOOK_SECRET:-ZGVtby1taWNyb3NvZnQtdGVhbXMtc2VjcmV0}"
export SIGNAL_SCIENCES_WEBHOOK_SECRET="${SIGNAL_SCIENCES_WEBHOOK_SECRET:-demo-signal-sciences-secret}"
export TRENDMICRO_CONFORMITY_WEBHOOK_SECRET="${TRENDMICRO_CONFORMITY_WEBHOOK_SECRET:-demo-trendmicro-conformity-secret}"
export GO1_WEBHOOK_SECRET="${GO1_WEBHOOK_SECRET:-demo-go1-secret}"
export BOLT_WEBHOOK_SECRET="${BOLT_WEBHOOK_SECRET:-demo-bolt-secret}"
export BREX_WEBHOOK_SECRET="${BREX_WEBHOOK_SECRET:-ZGVtby1icmV4LXNlY3JldA==}"
export COINBASE_WEBHOOK_SECRET="${COINBASE_WEBHOOK_SECRET:-demo-coinbase-secret}"
export CALENDLY_WEBHOOK_SECRET="${CALENDLY_WEBHOOK_SECRET:-demo-calendly-secret}"
export GITLAB_WEBHOOK_TOKEN="${GITLAB_WEBHOOK_TOKEN:-demo-gitlab-token}"
export TELEGRAM_SECRET_TOKEN="${TELEGRAM_SECRET_TOKEN:-demo-telegram-secret_token}"
export SNS_TOPIC_ARN="${SNS_TOPIC_ARN:-arn:aws:sns:us-east-1:123456789012:callback-guard-demo}"
export PAYPAL_WEBHOOK_ID="${PAYPAL_WEBHOOK_ID:-0DEMO0WEBHOOK0ID0}"
export PUBSUB_SERVICE_ACCOUNT="${PUBSUB_SERVICE_ACCOUNT:-push@callback-guard-demo.iam.gserviceaccount.com}"
export CONTENTFUL_WEBHOOK_SECRET="${CONTENTFUL_WEBHOOK_SECRET:-demo-contentful-signing-secret-0123456789abcdefghijklmnopqrstuvw}"
export ZENDESK_WEBHOOK_SECRET="${ZENDESK_WEBHOOK_SECRET:-demo-zendesk-signing-secret}"
export HYGRAPH_WEBHOOK_SECRET="${HYGRAPH_WEBHOOK_SECRET:-demo-hygraph-webhook-secret}"
export OKTA_EVENT_HOOK_SECRET="${OKTA_EVENT_HOOK_SECRET:-demo-okta-hook-secret}"
export STATIC_WEBHOOK_TOKEN="${STATIC_WEBHOOK_TOKEN:-demo-static-token}"
export BASIC_AUTH_CREDENTIALS="${BASIC_AUTH_CREDENTIALS:-demo:basic-password}"
# END generated (exports)
venv=.venv
run=.run

mkdir -p "$run/tls"
# A fresh self-signed certificate for 127.0.0.1 at every start.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
  -keyout "$run/tls/key.pem" -out "$run/tls/cert.pem" 2>/dev/null

# SNS's and PayPal's signing certificates and the key of the tokens the simulator pushes
# as Pub/Sub, as the demo's sns_certificates, paypal_certificates and google_jwks clusters
# serve them (127.0.0.1:8082).
mkdir -p "$run/certificates"
cp core/src/providers/sns/demo-certificate.pem \
  "$run/certificates/SimpleNotificationService-3011a86d709cb093a778a7e29ababe5d.pem"
cp core/src/providers/paypal/demo-certificate.pem "$run/certificates/CERT-00000000-00000000-0000de30"
cp core/src/providers/google_pubsub/demo-jwks.json "$run/certificates/jwks.json"

"$venv/bin/python" envoy/demo_upstream.py --port 8081 \
  --certificates "$run/certificates" --certificates-port 8082 &
upstream=$!
trap 'kill "$upstream" 2>/dev/null || true' EXIT

# BEGIN generated from envoy/routes/routes.yaml by make manifests (banner): do not edit
echo "callback-guard demo: https://127.0.0.1:8443 and http://127.0.0.1:8080 protect /vobiz/, /whatsapp/, /kyc/,"
echo "  /standard/, /svix/, /stripe/, /github/, /slack/, /twilio/, /plivo/, /shopify/, /meta/, /generic/,"
echo "  /discord/, /telnyx/, /sendgrid/, /clerk/, /resend/, /mailgun/, /razorpay/, /paddle/, /square/,"
echo "  /hubspot/, /linear/, /zoom/, /pagerduty/, /intercom/, /twitch/, /bitbucket/, /xero/, /dropbox/,"
echo "  /twitter/, /box/, /docusign/, /worldline/, /typeform/, /sentry/, /buildkite/, /circleci/, /mux/,"
echo "  /frameio/, /heroku/, /launch-darkly/, /terraform/, /webex/, /tiktok/, /mailchimp/, /modern-treasury/,"
echo "  /mongodb/, /orb/, /pinwheel/, /pusher/, /sonatype/, /alchemy/, /autodesk/, /aftership/, /castle/,"
echo "  /chargify/, /clearbit/, /jira/, /microsoft-teams/, /signal-sciences/, /trendmicro-conformity/, /go1/,"
echo "  /bolt/, /brex/, /coinbase/, /calendly/, /gitlab/, /telegram/, /sns/, /paypal/, /pubsub/, /contentful/,"
echo "  /zendesk/, /hygraph/, /okta/, /token/, /basic/ (Ctrl-C stops)"
# END generated (banner)
"$venv/bin/envoy" -c envoy/envoy.yaml --concurrency 2 --disable-hot-restart --log-format '[%Y-%m-%d %T.%e][%l] %v' \
  --component-log-level wasm:info
