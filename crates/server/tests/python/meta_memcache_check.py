"""meta-memcache (PyPI) against the server on 127.0.0.1:<argv[1]>: get, set, delete, CAS,
touch, multi-get, binary (unicode) keys, counters, and stale-while-revalidate through the
client's own StalePolicy and LeasePolicy. Exits non-zero on the first failed check."""

import sys

from meta_memcache import (
    CacheClient,
    Key,
    LeasePolicy,
    ServerAddress,
    StalePolicy,
    connection_pool_factory_builder,
)


def client(port):
    return CacheClient.cache_client_from_servers(
        servers=[ServerAddress(host="127.0.0.1", port=port)],
        connection_pool_factory_fn=connection_pool_factory_builder(recv_timeout=5),
    )


def check(what, got, expected):
    if got != expected:
        sys.exit(f"{what}: got {got!r}, expected {expected!r}")
    print(f"ok {what}")


def main():
    port = int(sys.argv[1])
    c, other = client(port), client(port)

    check("set", c.set("k", "v1", ttl=100), True)
    check("get", c.get("k"), "v1")
    value, cas = c.get_cas("k")
    check("get_cas value", value, "v1")
    check("set with the current cas", c.set("k", "v2", ttl=100, cas_token=cas), True)
    check("set with an old cas", c.set("k", "v3", ttl=100, cas_token=cas), False)
    check("value after the conflict", c.get("k"), "v2")
    check("touch", c.touch("k", ttl=50), True)
    check("touch a missing key", c.touch("nothing", ttl=50), False)
    check("delete", c.delete("k"), True)
    check("get after delete", c.get("k"), None)
    check("delete a missing key", c.delete("k"), False)

    c.set("a", 1, ttl=0)
    c.set("b", {"x": [1, 2]}, ttl=0)
    got = c.multi_get(["a", "b", "missing"])
    check(
        "multi_get",
        {k.key: v for k, v in got.items()},
        {"a": 1, "b": {"x": [1, 2]}, "missing": None},
    )
    check("unicode key set", c.set(Key("clé-🍺"), "beer", ttl=0), True)
    check("unicode key get", c.get(Key("clé-🍺")), "beer")
    check("large value", c.set("big", "x" * 200_000, ttl=0) and len(c.get("big")), 200_000)

    check("delta on a missing counter", c.delta("n", 1), False)
    check("delta_initialize", c.delta_initialize("n", 5, initial_value=10, initial_ttl=100), True)
    check("delta_and_get", c.delta_and_get("n", 5), 15)

    # Stale while revalidate: an invalidation marks the item stale; the first reader wins
    # the right to recache (and sees a miss), the others keep reading the stale value.
    stale = StalePolicy(mark_stale_on_deletion_ttl=30)
    c.set("s", "old", ttl=100)
    check("invalidate marking stale", c.invalidate("s", stale_policy=stale), True)
    check("first reader wins the recache", c.get("s"), None)
    check("other readers get the stale value", other.get("s"), "old")
    check("winner refills", c.set("s", "new", ttl=100), True)
    check("fresh value for all", other.get("s"), "new")

    # A CAS write that lost a race is stored, but stale, with mark_stale_on_cas_mismatch.
    mismatch = StalePolicy(mark_stale_on_cas_mismatch=True)
    _, old_cas = c.get_cas("s")
    c.set("s", "newer", ttl=100)
    check(
        "older cas stored as stale",
        c.set("s", "late", ttl=100, cas_token=old_cas, stale_policy=mismatch),
        True,
    )
    check("the stale write is served to the recache winner as a miss", c.get("s"), None)
    check("and to the others as stale", other.get("s"), "late")

    # Leases on a miss: the first client gets the lease (a miss), the others retry and
    # then see the winner's value.
    lease = LeasePolicy(ttl=30, miss_retries=50, miss_retry_wait=0.01, miss_max_retry_wait=0.05)
    check("lease winner sees a miss", c.get_or_lease("l", lease_policy=lease), None)
    check("the placeholder is not a value", other.get("l"), None)
    c.set("l", "filled", ttl=100)
    check("other client after the refill", other.get_or_lease("l", lease_policy=lease), "filled")
    print("meta-memcache: all checks passed")


main()
