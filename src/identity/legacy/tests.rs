//! Each format against hashes made by its reference implementation: the
//! Rust crates for bcrypt, SHA-crypt and Argon2; OpenSSL (`openssl passwd`)
//! for md5-crypt and SHA-crypt; Python's hashlib laid out as Django,
//! passlib and OpenLDAP write them; Ory Kratos's and Firebase's published
//! vectors for the rest.

use super::{LegacyHash, algorithm_of};

const PASSWORD: &str = "correct horse battery";

/// (hash, password it was made from, algorithm)
const VECTORS: &[(&str, &str, &str)] = &[
    // openssl passwd -1 -salt saltsalt
    ("$1$saltsalt$UevX3RQ4rPNbqFqf8dVFn.", PASSWORD, "md5-crypt"),
    // openssl passwd -5 -salt saltsaltsalt
    (
        "$5$saltsaltsalt$9ZURjmMOadyQOcorTsuSvXoPv7wEQSJbPU3LXY8gsN6",
        PASSWORD,
        "sha256-crypt",
    ),
    // openssl passwd -6 -salt 'rounds=10000$usesomesillystri'
    (
        "$6$rounds=10000$usesomesillystri$as5spz4PjnCdt0SUCRMhIGpLjBidcJkMNpENtIdwcTkW1ZseJyaB0Kg42j1Uk8NCK7nClP5M2C596Q.kVpCV30",
        PASSWORD,
        "sha512-crypt",
    ),
    // OpenLDAP's {SSHA}: base64(SHA-1(password ‖ salt) ‖ salt)
    ("{SSHA}/3PlN3UJp3C48c9ALKPgGvqO1T8BAgMEBQYHCA==", PASSWORD, "ssha"),
    (
        "{SSHA512}6X76d7T73BEH/Jvr7ye8RpGYuPHvQVs3rbolH4ihvyTaJisrXceVtVDKTUVhAEm2AoQlBhcx8ZVsbCGp/H8uugECAwQFBgcI",
        PASSWORD,
        "ssha512",
    ),
    // Kratos's hash_comparator tests
    ("{SSHA}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a", "test123", "ssha"),
    (
        "{SSHA256}czO44OTV17PcF1cRxWrLZLy9xHd7CWyVYplr1rOhuMlx/7IK",
        "test123",
        "ssha256",
    ),
    // Django's PBKDF2PasswordHasher layout
    (
        "pbkdf2_sha256$260000$seasaltseasalt12$yfkhlWO2JkHw4RRfkKaTe7wfG0DCQkP7tjwHyzyomf0=",
        PASSWORD,
        "pbkdf2-sha256",
    ),
    // passlib's pbkdf2_sha256 / pbkdf2_sha512 (adapted base64)
    (
        "$pbkdf2-sha256$29000$c2FsdHlzYWx0eXNhbHQhIQ$5Z/vcUuf.U0eN1LtJtN2NMB4Jb01k43aqTka83ju4yE",
        PASSWORD,
        "pbkdf2-sha256",
    ),
    (
        "$pbkdf2-sha512$25000$c2FsdHlzYWx0eXNhbHQhIQ$W75kKVaPAv/El7B0.PlpPHfVYxDGn5.MON9bsTp37A51.RK6L1NnQgrCgXI5lpMf.tAoS4d95Bu4alms.WuRxg",
        PASSWORD,
        "pbkdf2-sha512",
    ),
    // PHC pbkdf2 (Kratos)
    (
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
        "test",
        "pbkdf2-sha256",
    ),
    (
        "$pbkdf2-sha512$i=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc",
        "test",
        "pbkdf2-sha512",
    ),
    // PHC scrypt (hashlib.scrypt, n = 2^14)
    (
        "$scrypt$ln=14,r=8,p=1$c2FsdHlzYWx0eXNhbHQhIQ$SHSNlN7PVAETJMz6LEDsrUZJ107RnrHoaZIRf+4fBGI",
        PASSWORD,
        "scrypt",
    ),
    // bcrypt (Kratos)
    (
        "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
        "test",
        "bcrypt",
    ),
    // Argon2 at other parameters (Kratos)
    (
        "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        "test",
        "argon2id",
    ),
    (
        "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c",
        "test",
        "argon2i",
    ),
    // Firebase scrypt: the firebase/scrypt README's vector, and Kratos's
    (
        "$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$Bw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
        "user1password",
        "firebase-scrypt",
    ),
    (
        "$firescrypt$ln=14,r=8,p=1$sPtDhWcd1MfdAw==$xbSou7FOl6mChCyzpCPIQ7tku7nsQMTFtyOZSXXd7tjBa4NtimOx7v42Gv2SfzPQu1oxM2/k4SsbOu73wlKe1A==$Bw==$YE0dO4bwD4JnJafh6lZZfkp1MtKzuKAXQcDCJNJNyeCHairWHKENOkbh3dzwaCdizzOspwr/FITUVlnOAwPKyw==",
        "8x4WjoDbSxJZdR",
        "firebase-scrypt",
    ),
];

#[test]
fn every_vector_verifies_its_password_and_no_other() {
    for (hash, password, algorithm) in VECTORS {
        let parsed = LegacyHash::parse(hash);
        assert!(
            parsed.as_ref().is_ok_and(|p| p.algorithm() == *algorithm),
            "{hash}: {parsed:?}"
        );
        let verifies = |pw: &str| parsed.as_ref().is_ok_and(|p| p.verify(pw.as_bytes()));
        assert!(verifies(password), "{algorithm}: right password refused");
        assert!(
            !verifies(&format!("{password}x")),
            "{algorithm}: wrong password accepted"
        );
        assert!(!verifies(""), "{algorithm}: empty password accepted");
    }
}

#[test]
fn hashes_made_by_the_rust_crates_verify() {
    let bcrypt = bcrypt::hash(PASSWORD, 4).unwrap_or_default();
    let sha512 = {
        use sha_crypt::PasswordHasher as _;
        sha_crypt::ShaCrypt::SHA512
            .hash_password_with_salt(PASSWORD.as_bytes(), b"0123456789ab")
            .map(|h| h.to_string())
            .unwrap_or_default()
    };
    for hash in [bcrypt.replacen("$2b$", "$2y$", 1), bcrypt, sha512] {
        let parsed = LegacyHash::parse(&hash);
        assert!(
            parsed.as_ref().is_ok_and(|p| p.verify(PASSWORD.as_bytes())),
            "{hash}: {parsed:?}"
        );
        assert!(parsed.is_ok_and(|p| !p.verify(b"another password")), "{hash}");
    }
}

#[test]
fn a_flipped_character_in_the_hash_fails() {
    for (hash, password, algorithm) in VECTORS {
        // Change the last character that is not padding.
        let mut bytes = hash.as_bytes().to_vec();
        let last = bytes.iter().rposition(|b| *b != b'=').unwrap_or(0);
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap_or_default();
        let accepted = LegacyHash::parse(&tampered).is_ok_and(|h| h.verify(password.as_bytes()));
        assert!(!accepted, "{algorithm}: tampered hash still verifies");
    }
}

#[test]
fn absurd_costs_are_refused_when_parsed_not_when_checked() {
    let salt22 = "o6hx.Wog/wvFSkT/Bp/6DO";
    let bcrypt31 = format!("$2b$31${salt22}xCtLRTDj7lm9on9suF/WaCGNVHbkfL6");
    for hostile in [
        bcrypt31.as_str(),
        "$scrypt$ln=31,r=8,p=1$c2FsdA$aGFzaA",
        "$scrypt$ln=20,r=1024,p=1$c2FsdA$aGFzaA",
        "$scrypt$ln=14,r=8,p=100000$c2FsdA$aGFzaA",
        "$firescrypt$ln=31,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaA==$Bw==$a2V5a2V5",
        "$pbkdf2-sha256$i=4000000000,l=32$c2FsdA$aGFzaA",
        "pbkdf2_sha256$999999999$salt$aGFzaA==",
        "$6$rounds=999999999$salt$as5spz4PjnCdt0SUCRMhIGpLjBidcJkMNpENtIdwcTkW1ZseJyaB0Kg42j1Uk8NCK7nClP5M2C596Q.kVpCV30",
        "$argon2id$v=19$m=4194304,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=65536,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=262144,t=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$scrypt$ln=1,r=1,p=4194304$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
        "$pbkdf2-sha256$i=1500000,l=64$c2FsdA$aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaA",
    ] {
        let refused = LegacyHash::parse(hostile)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("above what latchkey accepts"), "{hostile}: {refused}");
    }
}

#[test]
fn malformed_hashes_say_what_is_wrong() {
    for (malformed, says) in [
        ("plaintext", "no supported format"),
        ("$2b$12$short", "bcrypt"),
        (
            "$2b$ab$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6xx",
            "bcrypt",
        ),
        ("$scrypt$ln=14,r=8$c2FsdA$aGFzaA", "\"p\" is missing"),
        ("$scrypt$ln=14,r=8,p=1,x=2$c2FsdA$aGFzaA", "unknown parameter"),
        ("$scrypt$ln=abc,r=8,p=1$c2FsdA$aGFzaA", "not a number"),
        ("$scrypt$ln=14,r=8,p=1$(notbase64$aGFzaA", "not base64"),
        ("{SSHA}tooshort", "{SSHA}"),
        ("{SSHA}AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "no salt"),
        ("$1$toolongsalt$UevX3RQ4rPNbqFqf8dVFn.", "md5-crypt"),
        ("$pbkdf2-sha256$i=1000,l=16$c2FsdA$aGFzaA", "l is not"),
        ("$firescrypt$ln=14,r=8,p=1$c2FsdA==$aGFzaA==$Bw==", "expected"),
        ("$argon2x$v=19$m=32,t=2,p=4$cm94$MNzk", "unknown variant"),
    ] {
        let error = LegacyHash::parse(malformed)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains(says), "{malformed}: {error}");
    }
}

#[test]
fn latchkeys_own_hashes_are_argon2id() {
    assert_eq!(
        algorithm_of(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
        ),
        "argon2id"
    );
    assert_eq!(algorithm_of("nonsense"), "unknown");
}

#[test]
fn a_digest_shorter_than_16_bytes_is_refused() {
    for short in [
        "$scrypt$ln=4,r=8,p=1$c2FsdA$aA",
        "$pbkdf2-sha256$i=1000,l=1$c2FsdA$aA",
        "pbkdf2_sha256$1000$salt$aA==",
        "$firescrypt$ln=4,r=8,p=1$c2FsdA==$aA==$Bw==$aA==",
    ] {
        let error = LegacyHash::parse(short)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("16"), "{short}: {error}");
    }
}

#[test]
fn a_password_longer_than_an_imported_hash_is_checked_against_never_matches() {
    let long = "a".repeat(super::MAX_LEGACY_PASSWORD_BYTES + 1);
    let hash = {
        use sha_crypt::PasswordHasher as _;
        sha_crypt::ShaCrypt::SHA512
            .hash_password_with_salt(long.as_bytes(), b"0123456789ab")
            .map(|h| h.to_string())
            .unwrap_or_default()
    };
    let parsed = LegacyHash::parse(&hash);
    assert!(parsed.is_ok_and(|p| !p.verify(long.as_bytes())));
}
