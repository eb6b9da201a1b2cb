// lib.mjs: what the Node scripts share: a node-redis client on the server under test, an
// express app with express-session on any store listening on a free loopback port, the
// routes of a session's life that the store scripts drive, and a cookie-keeping "browser"
// that drives it over real HTTP.

import assert from "node:assert/strict";
import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";
import { readFileSync } from "node:fs";

/** Prints a progress line, `ok <step> [detail]`. */
export function ok(step, detail = "") {
  console.log(`ok ${step}${detail ? " " + detail : ""}`);
}

/**
 * A connected node-redis client for `url` speaking RESP`resp`. With `tlsCa` (a PEM file),
 * node-redis's documented socket options: `tls: true` and the CA to trust (Node then checks
 * the certificate chain and that it names the host, an IP SAN here).
 */
export async function connect(url, resp, tlsCa) {
  const socket = tlsCa ? { tls: true, ca: readFileSync(tlsCa) } : undefined;
  const client = createClient({ url, RESP: resp, ...(socket ? { socket } : {}) });
  client.on("error", (err) => {
    // node-redis emits connection errors here; without a listener they would crash the
    // process with less context than the failing assertion gives.
    console.error(`redis client error: ${err.stack ?? err}`);
  });
  await client.connect();
  return client;
}

/**
 * An express app with express-session on `store`; `routes(app)` adds the routes. Store
 * errors reach the HTTP client as a 500 with the message, which the checks print.
 */
export function sessionApp(store, routes) {
  const app = express();
  app.use(
    session({
      store,
      secret: "sessiond-it",
      name: "sid",
      resave: false,
      saveUninitialized: false,
    }),
  );
  routes(app);
  app.use((err, req, res, next) => {
    res.status(500).json({ error: String(err?.stack ?? err) });
  });
  return app;
}

/**
 * The routes of a session's life, for `sessionApp`: `POST /login/:user` (a new session
 * with `user` and `n = 1`), `GET /me`, `POST /incr` (`n + 1`), `POST /regenerate` (a new id,
 * the same user, `n = 1`), `POST /logout` (destroy). Each answers JSON.
 */
export function sessionCycleRoutes(app) {
  app.post("/login/:user", (req, res) => {
    req.session.user = req.params.user;
    req.session.n = 1;
    res.json({ sid: req.sessionID });
  });
  app.get("/me", (req, res) => {
    res.json({ sid: req.sessionID, user: req.session.user ?? null, n: req.session.n ?? null });
  });
  app.post("/incr", (req, res) => {
    req.session.n = (req.session.n ?? 0) + 1;
    res.json({ n: req.session.n });
  });
  app.post("/regenerate", (req, res, next) => {
    const user = req.session.user;
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = user;
      req.session.n = 1;
      res.json({ sid: req.sessionID });
    });
  });
  app.post("/logout", (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })));
  });
}

/** Starts `app` on a free loopback port: the server and its base URL. */
export async function listen(app) {
  const server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

/** A browser: one cookie jar, requests that must answer 200 with JSON. */
export function browser(base) {
  let cookie = null;
  return async (method, path) => {
    const res = await fetch(base + path, {
      method,
      headers: cookie ? { cookie } : {},
    });
    const body = await res.json();
    assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(body)}`);
    const set = res.headers.get("set-cookie");
    if (set) cookie = set.split(";")[0];
    return body;
  };
}

export { RedisStore };
