// A fast, minimal, independent server for the Knewton v0 endpoints a semester needs: the
// throughput yardstick of bench/throughput.py. No limits, no latency, no faults: whatever
// caps the requests per second of a client measured against it is the client (and the box).
//
// Written from the API reference (/work/shared/api/), sharing no code with kprov or its
// sandbox. It checks what the reference says a server checks: Basic credentials on the token
// endpoint, bearer tokens elsewhere, partner-admin-only account creation and instructor
// registrations, learner registrations by the admin or an instructor of that instance, one
// account per external id, one registration per account and instance.
//
//   node bench/servers/knewton_fast.js [--port 0] [--key K] [--secret S]
// Prints "listening PORT" once it accepts connections. GET /_bench/stats: request counts by
// endpoint; POST /_bench/reset: forget everything (a fresh server for the next run).
"use strict";

const http = require("http");
const crypto = require("crypto");

const args = process.argv.slice(2);
function option(name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 && at + 1 < args.length ? args[at + 1] : fallback;
}
const PORT = Number(option("--port", "0"));
const BASIC = "Basic " + Buffer.from(`${option("--key", "bench-key")}:${option("--secret", "bench-secret")}`).toString("base64");
const TOKEN_LIFETIME = 3599;

let store;
function reset() {
  store = {
    accountOf: new Map(), // external id -> account id
    externalOf: new Map(), // account id -> external id
    tokens: new Map(), // access token -> account id, or "" for the partner admin
    instances: new Map(), // instance id -> Set of instructor account ids
    registrations: new Map(), // account id + " " + instance id -> registration
    stats: Object.create(null),
  };
}
reset();

function count(label) {
  store.stats[label] = (store.stats[label] || 0) + 1;
}

function send(res, status, body) {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

function refuse(res, status, message) {
  send(res, status, { message, error_id: crypto.randomUUID() });
}

function mint(accountId) {
  const access = crypto.randomBytes(24).toString("base64url");
  store.tokens.set(access, accountId);
  return {
    access_token: access,
    refresh_token: crypto.randomBytes(24).toString("base64url"),
    token_type: "bearer",
    expires_in: TOKEN_LIFETIME,
  };
}

function token(req, res, raw) {
  count("POST /oauth/token");
  if (req.headers.authorization !== BASIC) return refuse(res, 401, "invalid client credentials");
  const form = new URLSearchParams(raw);
  if (form.get("grant_type") !== "client_credentials") {
    return refuse(res, 400, "unsupported grant_type");
  }
  const scope = form.get("scope");
  if (scope === null || scope === "") return send(res, 200, mint(""));
  const accountId = store.accountOf.get(scope);
  if (accountId === undefined) return refuse(res, 401, "no account has this external_user_id");
  return send(res, 200, mint(accountId));
}

// The caller's account id ("" for the partner admin), or undefined after answering 401.
function caller(req, res) {
  const header = req.headers.authorization || "";
  const who = header.startsWith("Bearer ") ? store.tokens.get(header.slice(7)) : undefined;
  if (who === undefined) refuse(res, 401, "invalid or expired access token");
  return who;
}

function createAccount(externalId) {
  if (typeof externalId !== "string" || externalId === "" || externalId.length > 256) {
    return { code: 422, body: { code: 422, error_message: "external_user_id is required" } };
  }
  if (store.accountOf.has(externalId)) {
    return { code: 422, body: { code: 422, error_message: `Duplicate account with ${externalId}` } };
  }
  const id = crypto.randomUUID();
  store.accountOf.set(externalId, id);
  store.externalOf.set(id, externalId);
  return { code: 200, body: { external_user_id: externalId, account_id: id, entitlements: [] } };
}

function batch(req, res, body) {
  count("POST /batch");
  const who = caller(req, res);
  if (who === undefined) return;
  if (who !== "") return refuse(res, 403, "only the partner administrator creates accounts");
  const requests = body && body.requests;
  if (!Array.isArray(requests) || requests.length > 50) {
    return refuse(res, 422, "requests must be a list of at most 50");
  }
  const responses = requests.map((r) =>
    r && r.method === "post" && r.relative_url === "/accounts" && r.body
      ? createAccount(r.body.external_user_id)
      : { code: 400, body: { code: 400, error_message: "only post /accounts is supported" } },
  );
  send(res, 200, { responses });
}

function account(req, res, body) {
  count("POST /accounts");
  const who = caller(req, res);
  if (who === undefined) return;
  if (who !== "") return refuse(res, 403, "only the partner administrator creates accounts");
  const made = createAccount(body && body.external_user_id);
  if (made.code !== 200) return refuse(res, made.code, made.body.error_message);
  const { external_user_id, account_id } = made.body;
  send(res, 201, { external_user_id, id: account_id, entitlements: [], email_verified: false });
}

function currentAccount(req, res) {
  count("GET /accounts/current");
  const who = caller(req, res);
  if (who === undefined) return;
  if (who === "") return refuse(res, 404, "the partner administrator has no account here");
  send(res, 200, { external_user_id: store.externalOf.get(who), id: who, entitlements: [] });
}

function instance(req, res, body) {
  count("POST /learning-instances");
  const who = caller(req, res);
  if (who === undefined) return;
  if (who !== "") return refuse(res, 403, "only the partner administrator creates instances");
  if (!body || typeof body.graph_id !== "string" || typeof body.name !== "string") {
    return refuse(res, 422, "graph_id and name are required");
  }
  const id = crypto.randomUUID();
  store.instances.set(id, new Set());
  send(res, 201, { id, graph_id: body.graph_id, name: body.name, in_progress: true });
}

function registration(req, res, body) {
  count("POST /registrations");
  const who = caller(req, res);
  if (who === undefined) return;
  const { type, account_id: accountId, learning_instance_id: instanceId } = body || {};
  if (type !== "learner" && type !== "instructor") {
    return refuse(res, 422, "type must be learner or instructor");
  }
  const instructors = store.instances.get(instanceId);
  if (instructors === undefined) return refuse(res, 422, "learning instance does not exist");
  if (!store.externalOf.has(accountId)) return refuse(res, 422, "account does not exist");
  if (who !== "" && (type === "instructor" || !instructors.has(who))) {
    return refuse(res, 403, "this token may not register this account here");
  }
  const key = accountId + " " + instanceId;
  const existing = store.registrations.get(key);
  if (existing !== undefined) return refuse(res, 422, `already registered as ${existing.type}`);
  const made = { id: crypto.randomUUID(), type, account_id: accountId, learning_instance_id: instanceId };
  store.registrations.set(key, made);
  if (type === "instructor") instructors.add(accountId);
  send(res, 201, made);
}

const ROUTES = {
  "POST /v0/oauth/token": token,
  "POST /v0/batch": batch,
  "POST /v0/accounts": account,
  "GET /v0/accounts/current": currentAccount,
  "POST /v0/learning-instances": instance,
  "POST /v0/registrations": registration,
};

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const route = `${req.method} ${req.url}`;
    if (route === "GET /_bench/stats") return send(res, 200, { requests: store.stats });
    if (route === "POST /_bench/reset") {
      reset();
      return send(res, 200, {});
    }
    const handler = ROUTES[route];
    if (handler === undefined) return refuse(res, 404, "no such endpoint");
    const raw = Buffer.concat(chunks).toString("utf8");
    if (handler === token) return token(req, res, raw);
    let body;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch (err) {
      return refuse(res, 400, "the body is not JSON");
    }
    return handler(req, res, body);
  });
});
server.keepAliveTimeout = 120000;
server.headersTimeout = 121000;
server.listen(PORT, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
