//! Real-client integration tests for sessiond: one test binary (`cargo test -p sessiond
//! --test it`) whose modules start sessiond on free loopback ports and drive it with the
//! clients it must serve unchanged.
//!
//! - [`memccapable`]: libmemcached's protocol conformance suite.
//! - [`php_memcached`]: PHP's `session.save_handler = memcached`, binary and text protocol.
//! - [`lifecycle`]: the stdout/SIGTERM contract the harness itself relies on.
//! - RESP clients (issue #4), on the harness's `RespServer`/`RespClient` and [`php`]:
//!   [`redis_cli`] (scripted sessions in RESP2 and RESP3, AUTH), [`php_redis`] (PHP's
//!   `session.save_handler = redis`), [`node_redis`] (express-session + connect-redis +
//!   node-redis), [`keyspace_events`] (expired events within 100 ms), and
//!   [`shared_keyspace`] (a php-memcached session read with redis-cli). The fred client
//!   (tower-sessions) has its own package, `crates/compat-fred`, to keep its dependencies
//!   out of this one.
//! - [`auth`]: users and roles on both listeners (php-memcached SASL, phpredis `auth[]`,
//!   redis-cli `--user`, memcached's text login), hostile logins, protected mode and the
//!   cross-protocol guard.
//! - [`limits`]: bounded memory whatever clients send (huge replies, clients that never
//!   read, pre-auth floods, thousands of idle connections), with the server's peak RSS.
//! - [`scripts`]: hostile Lua scripts (stack-deep and backtracking patterns, loops that catch
//!   their abort, library poisoning, bytecode) against the real binary, with both protocols
//!   served meanwhile.
//! - [`busy`]: Redis's busy-script model: `BUSY` for others past `busy-reply-threshold`,
//!   the allow-busy commands, `SCRIPT KILL` and `UNKILLABLE`, transactions hit by `BUSY`, the
//!   hard cap, memcached clients waiting, and a flood of commands and kills.
//! - [`tls`]: the TLS listeners with redis-cli, `openssl s_client`, phpredis, node-redis and
//!   php-memcached through a stunnel sidecar; client certificates, certificate reload on
//!   SIGHUP, handshake failures and timeouts.
//! - [`redis_core`]: `CLIENT REPLY` and `CLIENT KILL` on the wire.
//! - [`ruby_redis_store`]: Rails' Redis session store (Rack::Session::Redis on redis-store,
//!   from Debian) creating, reading, writing and destroying a session, and redis-store's
//!   `MULTI { SETNX; EXPIRE }` claim of a new id.
//! - [`transactions`]: `MULTI`/`EXEC`/`WATCH`: invalidation by another client, an expiry, a
//!   memcached write and `FLUSHALL`; `EXEC`'s atomicity; redis-cli and phpredis transactions.
//! - [`durability`]: the journal: a SIGKILL crash harness, torn and corrupt journals,
//!   deadlines and PHP sessions across restarts, and a full disk.
//! - [`lists`]: Redis lists with redis-cli; blocking pops woken by pushes from another
//!   connection, `EXEC`, Lua and `RENAME`, in order; time-outs, `MULTI`, disconnects,
//!   `CLIENT UNBLOCK`; hostile list requests; lists across `kill -9`, a rewrite and a restart.
//! - [`memcached_diff`]: the same bytes to a real memcached and to sessiond, replies
//!   compared: the meta protocol, `cas` 0, too-large sets, an 18,000-key get, malformed
//!   numbers, binary `STAT settings`/`detail`.
//! - [`py_meta_memcache`]: meta-memcache (Python, PyPI, pinned with hashes) over the meta
//!   protocol: get, set, delete, CAS, touch, stale-while-revalidate, leases.
//! - [`ruby_dalli`]: Dalli (Debian's ruby-dalli, binary protocol): get, set, add, cas,
//!   get_multi.
//! - [`java_spymemcached`]: spymemcached (Debian's libspymemcached-java) over text and
//!   binary: get, set, CAS, a multi-get.
//! - [`node_memcached`]: express-session with connect-memcached (text protocol): login,
//!   read, modify, regenerate, logout.
//! - [`memcached_events`]: keyspace notifications set at start (`--notify-keyspace-events`)
//!   and raised by memcached text, binary and php-memcached writes, across a restart.
//!
//! - [`sessions`]: the session layer with the real clients: PHP (php-memcached and
//!   phpredis) and express-session logged in on several devices, counted, listed and
//!   revoked; a revocation while a request is in flight, the per-user limit, lifecycle
//!   events, the index across `kill -9`.
//! - [`http`]: the HTTP admin API with curl: three php-memcached sessions of one user
//!   counted, listed, shown and revoked, and the PHP app logged out; credentials and roles.
//! - [`admin_page`]: the admin page in headless Chromium (chromedriver, through
//!   [`webdriver`]): an admin finds a user with three PHP sessions, revokes them all, and
//!   the PHP app logs that user out; saves a screenshot.
//!
//! Servers, external programs and the raw memcached and RESP clients come from the
//! workspace's test harness (`crates/test-harness`, shared with the session middleware's
//! suite and `crates/compat-fred`); [`support`] holds what only this suite needs.
//!
//! The external programs come from Debian packages that `scripts/test.sh` installs; a
//! missing one fails the test with the package name. `SESSIOND_IT_TARGET=memcached` points
//! the memcached-protocol client tests at the Debian memcached instead, and
//! `SESSIOND_IT_TARGET=redis` the RESP client tests at the Debian redis-server, to check the
//! scenarios themselves against the reference servers.

mod admin_page;
mod auth;
mod busy;
mod durability;
mod http;
mod java_spymemcached;
mod keyspace_events;
mod lifecycle;
mod limits;
mod lists;
mod memcached_diff;
mod memcached_events;
mod memccapable;
mod node_memcached;
mod node_redis;
mod php;
mod php_memcached;
mod php_redis;
mod py_meta_memcache;
mod redis_cli;
mod redis_core;
mod redis_exporter;
mod ruby_dalli;
mod ruby_redis_store;
mod scripts;
mod sessions;
mod shared_keyspace;
mod streams;
mod support;
mod tls;
mod transactions;
// Shared by path with the farm and the tokens' browser test; each uses a part of it.
#[allow(dead_code)]
mod webdriver;
