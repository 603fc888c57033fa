-- wrk script: recovery starts, half for the 1,000 seeded accounts, half for
-- addresses that have none.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  counter = counter + 1
  local n = math.random(0, 999)
  local email
  if counter % 2 == 0 then
    email = string.format("bench-%d@example.com", n)
  else
    email = string.format("nobody-%d@example.com", n)
  end
  return wrk.format(nil, nil, nil, string.format('{"email":"%s"}', email))
end
