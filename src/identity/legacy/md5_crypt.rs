//! md5-crypt (`$1$`, Poul-Henning Kamp's FreeBSD scheme, as glibc and
//! OpenSSL's `passwd -1` compute it) over RustCrypto's MD5. No maintained
//! crate ships it; the loop is short and checked against OpenSSL's output.

use md5::{Digest, Md5};

/// crypt's base64 alphabet.
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `text` is written only in crypt's base64 alphabet.
pub fn is_crypt64(text: &str) -> bool {
    text.bytes().all(|b| ITOA64.contains(&b))
}

/// The 22-character hash part of `$1$<salt>$<hash>`.
pub fn hash(password: &[u8], salt: &[u8]) -> String {
    let mut alternate = Md5::new();
    alternate.update(password);
    alternate.update(salt);
    alternate.update(password);
    let alternate = alternate.finalize();

    let mut context = Md5::new();
    context.update(password);
    context.update(b"$1$");
    context.update(salt);
    for chunk in password.chunks(16) {
        context.update(&alternate[..chunk.len()]);
    }
    let mut length = password.len();
    while length > 0 {
        if length & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        length >>= 1;
    }
    let mut digest: [u8; 16] = context.finalize().into();

    for round in 0..1000 {
        let mut step = Md5::new();
        if round & 1 == 1 {
            step.update(password);
        } else {
            step.update(digest);
        }
        if round % 3 != 0 {
            step.update(salt);
        }
        if round % 7 != 0 {
            step.update(password);
        }
        if round & 1 == 1 {
            step.update(digest);
        } else {
            step.update(password);
        }
        digest = step.finalize().into();
    }

    let mut out = String::with_capacity(22);
    let mut push = |mut value: u32, chars: usize| {
        for _ in 0..chars {
            out.push(char::from(ITOA64[(value & 0x3f) as usize]));
            value >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push(
            u32::from(digest[a]) << 16 | u32::from(digest[b]) << 8 | u32::from(digest[c]),
            4,
        );
    }
    push(u32::from(digest[11]), 2);
    out
}
