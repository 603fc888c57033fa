-- wrk script: token-dialect reset (/v2/auth/recovery/confirm: the code and a
-- new password, hashed with Argon2id), one flow per request, from the file
-- bench/flows.py wrote (BENCH_FLOWS). The run stops when the file is used
-- up; the 2xx count is printed at the end.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local flows, next_flow = {}, 0
for line in io.lines(os.getenv("BENCH_FLOWS")) do
  local secret, code = line:match("^(%S+) (%d+)$")
  table.insert(flows, {secret, code})
end
ok = 0
request = function()
  next_flow = next_flow + 1
  if next_flow > #flows then
    -- Every flow is spent: stop here, so req/s counts only real work.
    wrk.thread:stop()
    next_flow = 1
  end
  local flow = flows[next_flow]
  local password = "purple elephants dance quietly 7"
  return wrk.format(nil, nil, nil, string.format(
    '{"token":"%s","code":"%s","password":"%s","repeatPassword":"%s"}', flow[1], flow[2], password, password))
end
response = function(status)
  if status == 200 then ok = ok + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function()
  for _, t in ipairs(threads) do io.write(string.format("succeeded %d\n", t:get("ok"))) end
end
