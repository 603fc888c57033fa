"""Starts recovery flows for seeded accounts and writes, one per line, the
secret that opens each flow and the code the courier mailed for it:

    python3 bench/flows.py URL MAIL_DIR cookie|token FIRST COUNT OUT

`cookie` starts cookie-dialect flows (`latchkey_recovery=…` for verify.lua),
`token` starts token-dialect flows (the recovery token for confirm.lua).
Accounts bench-FIRST … bench-(FIRST+COUNT-1) are used; a new flow supersedes
an account's older one, so the two kinds use different ranges."""
import email, email.utils, json, os, re, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

url, mail_dir, kind, first, count, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]

def start(n):
    address = f"bench-{n}@example.com"
    if kind == "cookie":
        path, body = "/api/auth/recovery/start", {"email": address}
    else:
        path, body = "/v2/auth/recovery/request", {"login": address}
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        if kind == "cookie":
            cookie = r.headers["set-cookie"].split(";")[0]
            return address, cookie
        return address, json.load(r)["token"]

with ThreadPoolExecutor(16) as pool:
    secrets = dict(pool.map(start, range(first, first + count)))

pattern = re.compile(r"code is: (\d{6})")
codes, seen, deadline = {}, set(), time.time() + 120
while len(codes) < count and time.time() < deadline:
    for name in os.listdir(mail_dir):
        if name in seen:
            continue
        seen.add(name)
        with open(os.path.join(mail_dir, name), "rb") as f:
            message = email.message_from_binary_file(f)
        to = email.utils.parseaddr(message["to"])[1]
        if to not in secrets:
            continue
        body = "".join(part.get_payload(decode=True).decode("utf-8", "replace")
                       for part in message.walk() if part.get_content_type() == "text/plain")
        found = pattern.search(body)
        if found:
            codes[to] = found.group(1)
    time.sleep(0.2)

with open(out, "w") as f:
    for address, secret in secrets.items():
        if address in codes:
            f.write(f"{secret} {codes[address]}\n")
print(f"{len(codes)} of {count} {kind} flows ready", file=sys.stderr)
