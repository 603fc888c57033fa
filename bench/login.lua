-- wrk script: logins with the right password for the seeded accounts; the
-- 200 count is printed at the end (a 503 `overloaded` is not a login).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
ok = 0
request = function()
  local n = math.random(0, 999)
  local body = string.format('{"identifier":"bench-%d@example.com","password":"correct horse battery staple 42"}', n)
  return wrk.format(nil, nil, nil, body)
end
response = function(status)
  if status == 200 then ok = ok + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function()
  for _, t in ipairs(threads) do io.write(string.format("succeeded %d\n", t:get("ok"))) end
end
