"""N GET requests over 4 keep-alive connections, for bench/instructions.sh:

    python3 bench/requests.py PORT alive|token|jwt|start N SESSIONS

alive asks /health/alive; token and jwt ask /api/auth/session with the
sessions bench/sessions.py wrote; start posts recovery starts, half for the
seeded accounts (bench-0 … bench-49) and half for addresses that have none.
Fails if any answer is not 200."""
import http.client, json, sys, threading

port, what, n, sessions_file = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
sessions = [line.split() for line in open(sessions_file)]
failed = []

def worker(k):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(k, n, 4):
        token, jwt = sessions[i % len(sessions)]
        if what == "start":
            email = f"bench-{i % 50}@example.com" if i % 2 == 0 else f"nobody-{i}@example.com"
            conn.request("POST", "/api/auth/recovery/start", body=json.dumps({"email": email}),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                failed.append(response.status)
            continue
        if what == "alive":
            path, headers = "/health/alive", {}
        elif what == "token":
            path, headers = "/api/auth/session", {"X-Session-Token": token}
        else:
            path, headers = "/api/auth/session", {"Authorization": f"Bearer {jwt}"}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            failed.append(response.status)

threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failed:
    sys.exit(f"{len(failed)} answers were not 200: {sorted(set(failed))}")
