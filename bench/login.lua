-- wrk script: logins with the right password for the seeded accounts.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local n = math.random(0, 999)
  local body = string.format('{"identifier":"bench-%d@example.com","password":"correct horse battery staple 42"}', n)
  return wrk.format(nil, nil, nil, body)
end
