-- wrk script: cookie-dialect verify with the right code, one flow per
-- request, from the file bench/flows.py wrote (BENCH_FLOWS). A flow verifies
-- once; the run stops when the file is used up, and the 2xx count is
-- printed at the end.
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
  wrk.headers["Cookie"] = flow[1]
  return wrk.format(nil, nil, nil, string.format('{"code":"%s"}', flow[2]))
end
response = function(status)
  if status == 200 then ok = ok + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function()
  for _, t in ipairs(threads) do io.write(string.format("succeeded %d\n", t:get("ok"))) end
end
