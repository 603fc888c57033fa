-- wrk script: GET /api/auth/session for the sessions bench/sessions.py wrote
-- (BENCH_SESSIONS), with the session token (BENCH_CREDENTIAL=token) or the
-- Bearer JWT (=jwt). Counts the 200s, so a refused credential shows.
local sessions = {}
for line in io.lines(os.getenv("BENCH_SESSIONS")) do
  local token, jwt = line:match("^(%S+) (%S+)$")
  table.insert(sessions, {token, jwt})
end
local use_jwt = os.getenv("BENCH_CREDENTIAL") == "jwt"
local n = 0
ok = 0
request = function()
  n = n % #sessions + 1
  local headers = {}
  if use_jwt then
    headers["Authorization"] = "Bearer " .. sessions[n][2]
  else
    headers["X-Session-Token"] = sessions[n][1]
  end
  return wrk.format("GET", nil, headers, nil)
end
response = function(status)
  if status == 200 then ok = ok + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function()
  for _, t in ipairs(threads) do io.write(string.format("succeeded %d\n", t:get("ok"))) end
end
