-- wrk script: GET the route as it is (the HTTP ceiling: /health/alive).
wrk.method = "GET"
