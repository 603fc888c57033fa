"""Creates N accounts through the admin API (bench-FIRST@example.com …):

    python3 bench/seed.py ADMIN_URL N WITH_PASSWORD(0|1) [FIRST]"""
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor

admin, count, with_password = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
first = int(sys.argv[4]) if len(sys.argv) > 4 else 0

def create(n):
    body = {"email": f"bench-{n}@example.com"}
    if with_password:
        body["password"] = "correct horse battery staple 42"
    req = urllib.request.Request(f"{admin}/admin/identities", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 201, r.status

with ThreadPoolExecutor(8) as pool:
    list(pool.map(create, range(first, first + count)))
