// session-cycle.mjs: express-session with connect-redis on node-redis, against the RESP
// server named by the environment, driven over real HTTP.
//
// Run by crates/server/tests/it/node_redis.rs (after `npm ci` in this directory) with:
//   REDIS_URL   redis://[:password@]127.0.0.1:<port>   the server under test
//               (rediss://… for TLS, with TLS_CA set)
//   TLS_CA      optional: PEM file of the CA the server's certificate is verified against
//   RESP        2 or 3 (node-redis defaults to 3, which means HELLO 3 and RESP3 replies)
//   PREFIX      connect-redis key prefix, unique per run
//
// The client, the app and the browser come from lib.mjs (shared with devices.mjs).
//
// Every check is an assertion here; a failure exits 1 with the step and the stack. Progress is
// printed as `ok <step> ...` lines, and the last line is `done`. Before `done` the script
// prints `kept <key>` for the one session it deliberately leaves behind and `foreign <key>` for
// a key outside the prefix, so the Rust side can inspect both with its own RESP client.
//
// The touch check does not read the TTL (TTL is not a command any session client sends, so
// the server need not have it): sessions are created with a short TTL, one of them is then
// touched with a long one, and once the untouched twin has expired the touched one must still
// be there. The TTL connect-redis uses is a function of a variable the script sets before
// each request (`ttlFor`), the store's documented `ttl` option.

import assert from "node:assert/strict";
import {
  RedisStore,
  browser as jar,
  connect,
  listen,
  ok,
  sessionApp,
  sessionCycleRoutes,
} from "./lib.mjs";

const url = process.env.REDIS_URL;
const resp = Number(process.env.RESP ?? "3");
const prefix = process.env.PREFIX ?? "myapp:";
assert.ok(url, "REDIS_URL must be set");

/** The TTL (seconds) connect-redis gives the next SET or EXPIRE. */
let ttlFor = 86400;
const SHORT_TTL = 3;

const client = await connect(url, resp, process.env.TLS_CA);
ok("connect", `RESP${resp}`);

// A second, independent client for looking at the keyspace behind the store's back.
const probe = client.duplicate();
probe.on("error", (err) => console.error(`probe client error: ${err.stack ?? err}`));
await probe.connect();

const store = new RedisStore({ client, prefix, ttl: () => ttlFor });
const app = sessionApp(store, sessionCycleRoutes);

const { server, base } = await listen(app);
const browser = () => jar(base);

async function stored(sid) {
  const raw = await probe.get(prefix + sid);
  return raw === null ? null : JSON.parse(raw);
}

async function waitGone(key, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await probe.exists(key)) === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${key} still exists ${timeoutMs} ms after it should have expired`);
}

try {
  // Login: a new, modified session is written with SET ... EX.
  const alice = browser();
  ttlFor = SHORT_TTL;
  const { sid } = await alice("POST", "/login/alice");
  assert.match(sid, /^[A-Za-z0-9_-]{32}$/);
  let rec = await stored(sid);
  assert.equal(rec?.user, "alice", `stored record ${JSON.stringify(rec)}`);
  ok("login", sid);

  // Read: GET, and since nothing changed, touch (EXPIRE) with the long TTL.
  ttlFor = 600;
  const me = await alice("GET", "/me");
  assert.deepEqual(me, { sid, user: "alice", n: 1 });
  ok("read", JSON.stringify(me));

  // The untouched twin, logged in after the touch with the short TTL: it expires after
  // alice's original deadline and after any deadline a touch with the short TTL would have
  // given, so alice outliving it shows the touch used the long TTL.
  ttlFor = SHORT_TTL;
  const twin = browser();
  const { sid: twinSid } = await twin("POST", "/login/twin");
  ok("twin", twinSid);

  // Touch took effect: once the twin has expired, alice's original deadline has passed too,
  // so only the EXPIRE with the long TTL kept it.
  // The twin disappearing without being read also shows expiry works at all.
  await waitGone(prefix + twinSid, SHORT_TTL * 1000 + 5000);
  assert.equal((await stored(sid))?.user, "alice", "the touched session expired");
  assert.equal((await twin("GET", "/me")).user, null, "the expired twin still logged in");
  ok("touch", "twin expired, touched session alive");

  // Modify: a full SET again.
  ttlFor = 600;
  assert.deepEqual(await alice("POST", "/incr"), { n: 2 });
  assert.equal((await stored(sid))?.n, 2);
  ok("modify");

  // Regenerate: DEL of the old id, SET of the new one.
  const { sid: newSid } = await alice("POST", "/regenerate");
  assert.notEqual(newSid, sid);
  assert.equal(await stored(sid), null, "old id still stored after regenerate");
  assert.equal((await stored(newSid))?.user, "alice");
  assert.deepEqual(await alice("GET", "/me"), { sid: newSid, user: "alice", n: 1 });
  ok("regenerate", newSid);

  // Destroy: DEL (sent as an array).
  await alice("POST", "/logout");
  assert.equal(await stored(newSid), null, "session still stored after logout");
  assert.equal((await alice("GET", "/me")).user, null);
  ok("destroy");

  // The store's admin API: SCAN ... MATCH <prefix>* COUNT, then MGET (all), DEL (clear).
  // A key outside the prefix must be left alone by all of them.
  const foreign = `${prefix.replace(/:$/, "")}-other:x`;
  await probe.set(foreign, "not a session");
  assert.equal(await promisify((cb) => store.length(cb)), 0, "leftover sessions");
  const users = ["u1", "u2", "u3", "u4", "u5"];
  const sids = {};
  for (const u of users) sids[u] = (await browser()("POST", `/login/${u}`)).sid;
  assert.equal(await promisify((cb) => store.length(cb)), users.length);
  const all = await promisify((cb) => store.all(cb));
  assert.deepEqual(
    all.map((s) => `${s.user}=${s.id}`).sort(),
    users.map((u) => `${u}=${sids[u]}`).sort(),
  );
  ok("all", `${all.length} sessions`);
  // A small scanCount makes connect-redis follow the SCAN cursor over several calls.
  const paged = new RedisStore({ client, prefix, scanCount: 2 });
  assert.deepEqual(
    (await promisify((cb) => paged.ids(cb))).sort(),
    Object.values(sids).sort(),
  );
  ok("ids", "scanCount 2");
  await promisify((cb) => store.clear(cb));
  assert.equal(await promisify((cb) => store.length(cb)), 0);
  assert.equal(await probe.get(foreign), "not a session", "clear touched a foreign key");
  ok("clear");

  // Leave one session for the Rust side to inspect.
  ttlFor = 600;
  const { sid: kept } = await browser()("POST", "/login/keeper");
  console.log(`kept ${prefix}${kept}`);
  console.log(`foreign ${foreign}`);
} finally {
  server.close();
  await client.quit();
  await probe.quit();
}
console.log("done");

function promisify(f) {
  return new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));
}
