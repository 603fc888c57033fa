//! Quoted-printable (RFC 2045 §6.7) for mail bodies, with line endings made
//! CRLF in the same pass.
//!
//! lettre chooses an encoding for each part, turns `\n` into `\r\n` and
//! encodes, in three passes; that came to about 170,000 instructions per
//! code mail, a quarter of a recovery start's (BENCHMARKS.md). The courier
//! writes each part already encoded instead.

/// Longest encoded line, without its CRLF (RFC 2045 §6.7 rule 5).
const MAX_LINE: usize = 76;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `text` as quoted-printable, every line break CRLF.
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8 + 16);
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        encode_line(line.strip_suffix('\r').unwrap_or(line).as_bytes(), &mut out);
        if lines.peek().is_some() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// One line of the text, wrapped with soft line breaks (`=` CRLF).
fn encode_line(line: &[u8], out: &mut Vec<u8>) {
    let mut width = 0;
    for (i, &byte) in line.iter().enumerate() {
        let last = i + 1 == line.len();
        // Printable ASCII but `=` stands for itself, and so do space and tab
        // unless they end the line (rule 3: a receiver may strip them there).
        let literal = matches!(byte, b'!'..=b'<' | b'>'..=b'~') || (matches!(byte, b' ' | b'\t') && !last);
        let size = if literal { 1 } else { 3 };
        // Room is kept for the `=` of a soft break, except on the last
        // token, which ends the line.
        let room = if last { MAX_LINE } else { MAX_LINE - 1 };
        if width + size > room {
            out.extend_from_slice(b"=\r\n");
            width = 0;
        }
        if literal {
            out.push(byte);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0x0f)]]);
        }
        width += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a mail reader makes of the encoded text.
    fn decoded(encoded: &[u8]) -> anyhow::Result<String> {
        let mut raw =
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".to_vec();
        raw.extend_from_slice(encoded);
        Ok(mailparse::parse_mail(&raw)?.get_body()?)
    }

    #[test]
    fn every_text_comes_back_whole_in_short_printable_lines() -> anyhow::Result<()> {
        let long = "Mã khôi phục của bạn là 482913. ".repeat(9);
        let texts = [
            String::new(),
            "plain ascii".into(),
            "a=b ends with a space \nand a tab\t\nthen =3D?".into(),
            "windows\r\nline\r\nendings\r\n".into(),
            long.clone(),
            format!("<p style=\"margin:0\">{long}</p>\n<a href=\"https://example.com/x?a=1&b=2\">Đặt lại</a>\n"),
            "x".repeat(75),
            "x".repeat(76),
            "x".repeat(77),
            format!("{}é", "x".repeat(74)),
            format!("{} ", "x".repeat(75)),
            "\u{1F512} 🔐 émoji\n\n\n".into(),
        ];
        for text in texts {
            let encoded = encode(&text);
            let as_text = std::str::from_utf8(&encoded)?;
            for line in as_text.split("\r\n") {
                assert!(line.len() <= MAX_LINE, "{line:?} is {} long", line.len());
                assert!(
                    line.bytes().all(|b| (b' '..=b'~').contains(&b) || b == b'\t'),
                    "{line:?}"
                );
                assert!(!line.ends_with([' ', '\t']), "{line:?} ends in white space");
            }
            assert!(!as_text.replace("\r\n", "").contains('\n') && !as_text.replace("\r\n", "").contains('\r'));
            assert_eq!(
                decoded(&encoded)?,
                text.replace("\r\n", "\n").replace('\n', "\r\n"),
                "{text:?}"
            );
        }
        Ok(())
    }
}
