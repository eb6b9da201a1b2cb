-- wrk script: spread the load over many sessions, as real traffic is. Each wrk thread first
-- sends cookie-less requests until it has collected POOL session cookies from Set-Cookie, then
-- sends every request with one of them picked at random.
local POOL = 64
local pool = {}

function request()
  if #pool < POOL then
    return wrk.format("GET", "/")
  end
  return wrk.format("GET", "/", { ["Cookie"] = pool[math.random(#pool)] })
end

function response(status, headers, body)
  if #pool >= POOL then
    return
  end
  local c = headers["Set-Cookie"] or headers["set-cookie"]
  if c then
    pool[#pool + 1] = c:match("^([^;]+)")
  end
end
