"""Writes a JSON Lines import file of N identities (default 100,000) to stdout:
every one with a verified email, a third with a username, a seventh with a
phone, and bcrypt, Django PBKDF2, md5-crypt, SHA-512-crypt and {SSHA} hashes
in turn. Usage: python3 bench/import_file.py [N] > users.jsonl"""
import json
import sys

HASHES = [
    "$2b$10$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
    "pbkdf2_sha256$260000$seasaltseasalt12$yfkhlWO2JkHw4RRfkKaTe7wfG0DCQkP7tjwHyzyomf0=",
    "$1$saltsalt$UevX3RQ4rPNbqFqf8dVFn.",
    "{SSHA}/3PlN3UJp3C48c9ALKPgGvqO1T8BAgMEBQYHCA==",
    "$6$rounds=10000$usesomesillystri$as5spz4PjnCdt0SUCRMhIGpLjBidcJkMNpENtIdwcTkW1ZseJyaB0Kg42j1Uk8NCK7nClP5M2C596Q.kVpCV30",
]

count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
for n in range(count):
    record = {"email": f"user{n}@example.com", "email_verified": True, "password_hash": HASHES[n % len(HASHES)]}
    if n % 3 == 0:
        record["username"] = f"user{n}"
    if n % 7 == 0:
        record["phone"] = f"+849{n:08d}"
    print(json.dumps(record))
