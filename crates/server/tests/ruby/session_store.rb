# Rails' Redis session store as Rails runs it: Rack::Session::Redis (Debian ruby-redis-rack,
# which ActionDispatch::Session::RedisStore subclasses) on Redis::Store (ruby-redis-store)
# and redis-rb (ruby-redis), against the server at ARGV[0] (host:port). A tiny Rack app is
# driven through Rack::MockRequest, carrying the session cookie between requests like a
# browser: a new session (login), a read, a write, and a destroy (logout). Then the store's
# own `setnx` with an expiry, which redis-store sends as MULTI { SETNX; EXPIRE }, the way
# Rack::Session::Redis claims a new session id. Each step prints `name=value` lines for the
# Rust test to check; a missing library exits 3 naming its Debian package.
begin
  require 'rack'
  require 'rack/mock'
  require 'rack/session/redis'
  require 'redis-store'
rescue LoadError => e
  warn "missing Ruby library (#{e.message}): install the Debian package ruby-redis-rack"
  exit 3
end

server = ARGV.fetch(0)
namespace = 'rack:session'

app = lambda do |env|
  session = env['rack.session']
  case env['PATH_INFO']
  when '/login'
    session['user'] = 'alice'
    session['visits'] = 1
  when '/write'
    session['visits'] = session['visits'].to_i + 1
  when '/logout'
    session.destroy
  end
  [200, { 'content-type' => 'text/plain' }, ["#{session['user']}|#{session['visits']}"]]
end

store = Rack::Session::Redis.new(
  app,
  redis_server: "redis://#{server}/0/#{namespace}",
  expire_after: 600,
  key: 'rails_session'
)
browser = Rack::MockRequest.new(store)
cookie = nil
step = lambda do |name, path|
  headers = cookie ? { 'HTTP_COOKIE' => cookie } : {}
  response = browser.get(path, headers)
  raise "#{name}: HTTP #{response.status}" unless response.status == 200
  set = response.headers['set-cookie'] || response.headers['Set-Cookie']
  cookie = set.split(';').first if set
  puts "#{name}.body=#{response.body}"
  sid = cookie && cookie.split('=', 2)[1]
  puts "#{name}.sid=#{sid}"
  if sid && !sid.empty?
    private_id = Rack::Session::SessionId.new(sid).private_id
    puts "#{name}.key=#{namespace}:#{private_id}"
  end
end

step.call('login', '/login')
step.call('read', '/read')
step.call('write', '/write')
step.call('reread', '/read')
step.call('logout', '/logout')
step.call('after', '/read')

# The store's setnx with an expiry: MULTI, SETNX, EXPIRE, EXEC.
raw = Redis::Store.new(host: server.split(':')[0], port: server.split(':')[1].to_i, db: 0)
key = "claim:#{Process.pid}"
puts "setnx.first=#{raw.setnx(key, 'one', expire_after: 120).inspect}"
puts "setnx.second=#{raw.setnx(key, 'two', expire_after: 120).inspect}"
puts "setnx.value=#{raw.get(key).inspect}"
puts "setnx.ttl=#{raw.ttl(key)}"
puts "setnx.key=#{key}"
