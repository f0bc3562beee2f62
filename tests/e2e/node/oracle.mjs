// The official Node SDK of a provider with no Python verifier, asked whether it accepts one
// request. Reads {"provider", "secret", "headers", "body" (base64), "now_ms"} as JSON on
// stdin (and "method", "path": the request's); prints {"accepted": bool, "reply": <what the
// SDK would answer, if anything>}.
import { verifyRequest } from "@contentful/node-apps-toolkit";
import hygraphUtils from "@hygraph/utils";
import { LinearWebhookClient } from "@linear/sdk/webhooks";
import { AwsLambdaReceiver } from "@zoom/rivet/meetings";
import Mux from "@mux/mux-node";
import coinbase from "coinbase-commerce-node";
import https from "node:https";
import { Readable } from "node:stream";
import MessageValidator from "sns-validator";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
}));
const body = Buffer.from(input.body, "base64");
// The SDKs read the clock through Date.now (Linear's ±60 s window).
Date.now = () => input.now_ms;
// Rivet logs every event it processes; stdout carries only the verdict.
console.debug = console.error = () => {};

async function linear() {
  const header = Object.entries(input.headers).find(([k]) => k.toLowerCase() === "linear-signature");
  try {
    new LinearWebhookClient(input.secret).verify(body, header ? header[1] : "");
    return { accepted: true };
  } catch {
    return { accepted: false };
  }
}

async function zoom() {
  const handler = new AwsLambdaReceiver({ webhooksSecretToken: input.secret }).start();
  const answer = await handler({ body: body.toString("utf8"), headers: input.headers, isBase64Encoded: false }, {});
  return { accepted: answer.statusCode === 200, reply: JSON.parse(answer.body) };
}

async function mux() {
  try {
    await new Mux({ tokenId: "e2e", tokenSecret: "e2e" }).webhooks.verifySignature(body.toString("utf8"), input.headers, input.secret);
    return { accepted: true };
  } catch {
    return { accepted: false };
  }
}

async function coinbaseCommerce() {
  const header = Object.entries(input.headers).find(([k]) => k.toLowerCase() === "x-cc-webhook-signature");
  try {
    return { accepted: coinbase.Webhook.verifySigHeader(body.toString("utf8"), header ? header[1] : "", input.secret) };
  } catch {
    return { accepted: false };
  }
}

// AWS's validator fetches the certificate SigningCertURL names with https.get: here it gets
// `secret`, the certificate the filter's cluster serves, whatever the URL (after the
// validator's own check of the URL's host).
async function sns() {
  https.get = (url, callback) => {
    callback(Object.assign(Readable.from([input.secret]), { statusCode: 200 }));
    return { on() { return this; } };
  };
  return new Promise((resolve) => {
    new MessageValidator().validate(body.toString("utf8"), (error) => resolve({ accepted: !error }));
  });
}

// The toolkit's verifyRequest at its default time to live (30 s); it throws on what it
// refuses to read (a secret, signature or signed-header list of another length).
async function contentful() {
  const request = { method: input.method, path: input.path, headers: input.headers, body: body.toString("utf8") };
  try {
    return { accepted: verifyRequest(input.secret, request, 30) };
  } catch {
    return { accepted: false };
  }
}

// verifyWebhookSignature with the raw body, as its README says for an unparsed body; it
// checks no time, and throws on a header it cannot split.
async function hygraph() {
  const header = Object.entries(input.headers).find(([k]) => k.toLowerCase() === "gcms-signature");
  try {
    return { accepted: hygraphUtils.verifyWebhookSignature({
      rawPayload: body.toString("utf8"), signature: header ? header[1] : "", secret: input.secret }) };
  } catch {
    return { accepted: false };
  }
}

const oracles = { linear, zoom, mux, coinbase: coinbaseCommerce, sns, contentful, hygraph };
process.stdout.write(JSON.stringify(await oracles[input.provider]()));
