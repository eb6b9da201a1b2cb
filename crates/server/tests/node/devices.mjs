// devices.mjs: an express app with express-session on connect-redis (the default `sess:`
// prefix, so sessiond's `express` session family), logging users in the way passport does
// (a fresh session id, then `req.session.passport = { user }`), driven by commands on stdin
// so the Rust side can revoke sessions between requests.
//
// Run by crates/server/tests/it/sessions.rs (after `npm ci` in this directory) with
// REDIS_URL (redis://127.0.0.1:<port>) and RESP (2 or 3). Commands, one a line, each
// answered with one line:
//   login <device> <user>   POST /login/<user> from <device>'s cookie jar: `login <device> <sid>`
//   me <device>             GET /me: `me <device> <user or null> <sid>`
//   quit                    `done`, and the process exits
// A request that fails prints `error <message>` and exits 1.

import { createInterface } from "node:readline";
import { RedisStore, browser, connect, listen, sessionApp } from "./lib.mjs";

const client = await connect(process.env.REDIS_URL, Number(process.env.RESP ?? "3"));
const store = new RedisStore({ client, prefix: "sess:" });
const app = sessionApp(store, (app) => {
  // passport's req.login(): regenerate the session (no fixation), then store the user.
  app.post("/login/:user", (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.passport = { user: req.params.user };
      res.json({ sid: req.sessionID });
    });
  });
  app.get("/me", (req, res) => {
    res.json({ sid: req.sessionID, user: req.session.passport?.user ?? null });
  });
});
const { server, base } = await listen(app);

const devices = new Map();
const device = (name) => {
  if (!devices.has(name)) devices.set(name, browser(base));
  return devices.get(name);
};

try {
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, name, arg] = line.trim().split(" ");
    if (command === "login") {
      const { sid } = await device(name)("POST", `/login/${arg}`);
      console.log(`login ${name} ${sid}`);
    } else if (command === "me") {
      const { sid, user } = await device(name)("GET", "/me");
      console.log(`me ${name} ${user} ${sid}`);
    } else if (command === "quit") {
      break;
    } else {
      throw new Error(`unknown command ${JSON.stringify(line)}`);
    }
  }
} catch (err) {
  console.log(`error ${String(err?.message ?? err).replaceAll("\n", " ")}`);
  process.exitCode = 1;
} finally {
  server.close();
  await client.quit();
}
if (!process.exitCode) console.log("done");
