"""Logs N seeded accounts in and writes one line per session, "TOKEN JWT":

    python3 bench/sessions.py URL N OUT"""
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor

url, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def login(n):
    body = {"identifier": f"bench-{n}@example.com", "password": "correct horse battery staple 42"}
    req = urllib.request.Request(f"{url}/api/auth/login", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        issued = json.load(r)
    return f"{issued['sessionToken']} {issued['jwt']}"

with ThreadPoolExecutor(2) as pool:
    lines = list(pool.map(login, range(count)))
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
