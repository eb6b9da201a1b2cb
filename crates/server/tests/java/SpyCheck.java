// spymemcached (Debian's libspymemcached-java, the client Tomcat's
// memcached-session-manager uses) against the server on 127.0.0.1:<args[0]>, over the text
// and then the binary protocol: set, get, gets + cas (a match and a stale unique), add,
// a multi-get, incr with a default, touch and delete. Exits non-zero on the first failed
// check.

import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

import net.spy.memcached.BinaryConnectionFactory;
import net.spy.memcached.CASResponse;
import net.spy.memcached.CASValue;
import net.spy.memcached.ConnectionFactory;
import net.spy.memcached.DefaultConnectionFactory;
import net.spy.memcached.MemcachedClient;

public class SpyCheck {
    static void check(String what, Object got, Object expected) {
        if (!Objects.equals(got, expected)) {
            System.err.println(what + ": got " + got + ", expected " + expected);
            System.exit(1);
        }
        System.out.println("ok " + what);
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        for (String protocol : new String[] {"text", "binary"}) {
            ConnectionFactory factory = protocol.equals("binary")
                ? new BinaryConnectionFactory()
                : new DefaultConnectionFactory();
            MemcachedClient c = new MemcachedClient(
                factory, Arrays.asList(new InetSocketAddress("127.0.0.1", port)));
            String p = protocol + ":";
            check(p + "set", c.set(p + "k", 100, "v1").get(), true);
            check(p + "get", c.get(p + "k"), "v1");
            check(p + "get a missing key", c.get(p + "missing"), null);
            CASValue<Object> read = c.gets(p + "k");
            check(p + "gets", read.getValue(), "v1");
            check(p + "cas", c.cas(p + "k", read.getCas(), "v2"), CASResponse.OK);
            check(p + "cas with a stale unique", c.cas(p + "k", read.getCas(), "v3"), CASResponse.EXISTS);
            check(p + "value after cas", c.get(p + "k"), "v2");
            check(p + "add on an existing key", c.add(p + "k", 100, "x").get(), false);
            check(p + "add on a new key", c.add(p + "new", 100, 42).get(), true);
            Map<String, Object> expected = new HashMap<>();
            expected.put(p + "k", "v2");
            expected.put(p + "new", 42);
            check(p + "multi-get", c.getBulk(p + "k", p + "new", p + "missing"), expected);
            check(p + "incr with a default", c.incr(p + "n", 5, 10), 10L);
            check(p + "incr", c.incr(p + "n", 5, 10), 15L);
            check(p + "touch", c.touch(p + "k", 50).get(), true);
            check(p + "delete", c.delete(p + "k").get(), true);
            check(p + "get after delete", c.get(p + "k"), null);
            c.shutdown();
        }
        System.out.println("spymemcached: all checks passed");
    }
}
