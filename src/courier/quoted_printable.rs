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
        // A line break is `\n` or `\r\n`; any other `\r` is text (`=0D`).
        if lines.peek().is_some() {
            encode_line(line.strip_suffix('\r').unwrap_or(line).as_bytes(), &mut out);
            out.extend_from_slice(b"\r\n");
        } else {
            encode_line(line.as_bytes(), &mut out);
        }
    }
    out
}

/// Bytes that stand for themselves: printable ASCII but `=`, and space and
/// tab (except at the end of a line, see `encode_line`).
const LITERAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = matches!(byte as u8, b'!'..=b'<' | b'>'..=b'~' | b' ' | b'\t');
        byte += 1;
    }
    table
};

/// One line of the text, wrapped with soft line breaks (`=` CRLF). Runs of
/// literal bytes are copied whole.
fn encode_line(line: &[u8], out: &mut Vec<u8>) {
    // Room for the text of an encoded line, leaving the `=` of a soft break.
    const ROOM: usize = MAX_LINE - 1;
    // A space or tab that ends the line is encoded (rule 3: a receiver may
    // strip white space there).
    let literal_end = match line.last() {
        Some(b' ' | b'\t') => line.len() - 1,
        _ => line.len(),
    };
    let mut width = 0;
    let mut i = 0;
    while i < line.len() {
        if width == ROOM {
            out.extend_from_slice(b"=\r\n");
            width = 0;
        }
        let literal = line.get(i..literal_end).unwrap_or_default();
        let run = literal
            .iter()
            .take(ROOM - width)
            .take_while(|&&b| LITERAL[usize::from(b)])
            .count();
        if run > 0 {
            out.extend_from_slice(&literal[..run]);
            width += run;
            i += run;
            continue;
        }
        if width + 3 > ROOM {
            out.extend_from_slice(b"=\r\n");
            width = 0;
        }
        let byte = line[i];
        out.extend_from_slice(&[b'=', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0x0f)]]);
        width += 3;
        i += 1;
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
            "ends in a carriage return\r".into(),
            "a\r\r\nb\rc".into(),
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
