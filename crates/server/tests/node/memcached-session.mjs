// memcached-session.mjs: express-session with connect-memcached (on the `memcached` npm
// client, text protocol) against the memcached server named by the environment, driven
// over real HTTP.
//
// Run by crates/server/tests/it/node_memcached.rs (after `npm ci` in this directory) with:
//   MEMCACHED   127.0.0.1:<port>   the server under test
//   PREFIX      connect-memcached key prefix, unique per run
//
// Login writes the session (`set <prefix><sid> 2 <ttl> …`, flags 2 = JSON), a read gets it
// and touches it (connect-memcached re-sets the whole record), a change is stored, a
// regenerated id leaves the old record gone, logout deletes it. The stored records are
// checked behind the store's back with a raw text-protocol `get`. Every check is an
// assertion; a failure exits 1. The last line is `done`.

import assert from "node:assert/strict";
import net from "node:net";
import session from "express-session";
import MemcachedStoreFactory from "connect-memcached";
import { browser as jar, listen, ok, sessionApp, sessionCycleRoutes } from "./lib.mjs";

const hostPort = process.env.MEMCACHED;
const prefix = process.env.PREFIX ?? "sess_";
assert.ok(hostPort, "MEMCACHED must be set");
const [host, port] = hostPort.split(":");

const MemcachedStore = MemcachedStoreFactory(session);
const store = new MemcachedStore({ hosts: [hostPort], prefix, ttl: 600 });

/** The raw record under `key` (flags and data), or null, with its own connection. */
function rawGet(key) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), host, () => socket.write(`get ${key}\r\n`));
    let data = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk]);
      const text = data.toString("latin1");
      if (!text.endsWith("END\r\n")) return;
      socket.end();
      if (text === "END\r\n") return resolve(null);
      const [header, body] = text.split("\r\n");
      const [, , flags] = header.split(" ");
      resolve({ flags: Number(flags), data: JSON.parse(body) });
    });
    socket.on("error", reject);
  });
}

const app = sessionApp(store, sessionCycleRoutes);

const { server, base } = await listen(app);
try {
  const alice = jar(base);
  const { sid } = await alice("POST", "/login/alice");
  let rec = await rawGet(prefix + sid);
  assert.equal(rec?.flags, 2, `stored record ${JSON.stringify(rec)}`);
  assert.equal(rec.data.user, "alice");
  ok("login", sid);

  assert.deepEqual(await alice("GET", "/me"), { sid, user: "alice", n: 1 });
  ok("read");

  assert.deepEqual(await alice("POST", "/incr"), { n: 2 });
  assert.equal((await rawGet(prefix + sid))?.data.n, 2);
  ok("modify");

  const { sid: newSid } = await alice("POST", "/regenerate");
  assert.notEqual(newSid, sid);
  assert.equal(await rawGet(prefix + sid), null, "the old id's record survived regenerate");
  assert.equal((await rawGet(prefix + newSid))?.data.user, "alice");
  ok("regenerate", newSid);

  await alice("POST", "/logout");
  assert.equal(await rawGet(prefix + newSid), null, "the record survived logout");
  const after = await alice("GET", "/me");
  assert.equal(after.user, null, `still logged in after logout: ${JSON.stringify(after)}`);
  ok("logout");
  console.log("done");
} finally {
  server.close();
  store.client?.end?.();
}
process.exit(0);
