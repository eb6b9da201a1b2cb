# Dalli (Debian's ruby-dalli, 3.0: the binary protocol) against the server on
# 127.0.0.1:ARGV[0]: get, set, add, cas, get_multi, incr, delete, touch, and a value large
# enough to be compressed. Exits non-zero on the first failed check.
require "dalli"

def check(what, got, expected)
  unless got == expected
    warn "#{what}: got #{got.inspect}, expected #{expected.inspect}"
    exit 1
  end
  puts "ok #{what}"
end

dc = Dalli::Client.new("127.0.0.1:#{ARGV[0]}", socket_timeout: 5, socket_max_failovers: 0)
check("version answers", dc.version.values.first.is_a?(String), true)
check("set", dc.set("k", "v1", 100).is_a?(Integer), true)
check("get", dc.get("k"), "v1")
check("get a missing key", dc.get("missing"), nil)
check("add on an existing key", dc.add("k", "other", 100), false)
check("add on a new key", dc.add("new", { "a" => [1, 2] }, 100).is_a?(Integer), true)
check("marshalled value", dc.get("new"), { "a" => [1, 2] })
check("cas", dc.cas("k", 100) { |v| v + "+cas" }.is_a?(Integer), true)
check("value after cas", dc.get("k"), "v1+cas")
check("cas on a missing key", dc.cas("missing", 100) { |v| v }, nil)
value, cas = dc.get_cas("k")
dc.set("k", "changed", 100)
check("set_cas with a stale cas", dc.set_cas("k", "late", cas, 100), false)
check("value after the conflict", dc.get("k"), "changed")
check("get_multi", dc.get_multi("k", "new", "missing"), { "k" => "changed", "new" => { "a" => [1, 2] } })
keys = (1..300).map { |i| "many:#{i}" }
keys.each { |k| dc.set(k, k.upcase, 100) }
check("get_multi of 300 keys", dc.get_multi(*keys).size, 300)
check("incr with an initial value", dc.incr("n", 1, 100, 10), 10)
check("incr", dc.incr("n", 5), 15)
check("decr below zero stops at 0", dc.decr("n", 100), 0)
check("touch", dc.touch("k", 50), true)
big = "x" * 100_000
check("large (compressed) value", dc.set("big", big, 100).is_a?(Integer), true)
check("large value back", dc.get("big"), big)
check("delete", dc.delete("k"), true)
check("get after delete", dc.get("k"), nil)
puts "dalli: all checks passed"
