//! SMS text in the GSM 03.38 alphabet, so a code fits one 160-character
//! segment instead of two of UCS-2: Vietnamese (and any Latin text) loses its
//! diacritics, a few typographic marks become their plain forms, and anything
//! else the alphabet cannot carry becomes `?`.

use unicode_normalization::UnicodeNormalization;

/// The basic GSM 03.38 character set (one septet each). The escape and the
/// extension table (`^{}\[~]|€`, two septets each) are handled apart.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const EXTENSION: &str = "^{}\\[~]|€";

/// One segment of GSM-7 text carries this many septets.
pub const SEGMENT: usize = 160;

/// `text` in the GSM 03.38 alphabet.
pub fn transliterate(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Decomposed, a letter with diacritics is its base letter and combining
    // marks (Vietnamese stacks two: "ệ" = e + circumflex + dot below).
    for c in text.nfd() {
        match c {
            '\u{0300}'..='\u{036f}' => {}
            'đ' => out.push('d'),
            'Đ' => out.push('D'),
            '‘' | '’' | '‚' | '′' => out.push('\''),
            '“' | '”' | '„' | '″' => out.push('"'),
            '–' | '—' | '‐' | '−' => out.push('-'),
            '…' => out.push_str("..."),
            '\u{a0}' | '\u{2009}' | '\u{202f}' | '\t' => out.push(' '),
            c if BASIC.contains(c) || EXTENSION.contains(c) => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// How many septets `text` takes, or `None` if it is not GSM-7 text.
pub fn septets(text: &str) -> Option<usize> {
    text.chars()
        .map(|c| {
            if BASIC.contains(c) {
                Some(1)
            } else if EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_loses_its_diacritics_and_nothing_else() {
        assert_eq!(
            transliterate("Mã khôi phục của bạn là 123456. Đừng chia sẻ — “không” ai…"),
            "Ma khoi phuc cua ban la 123456. Dung chia se - \"khong\" ai..."
        );
        assert_eq!(transliterate("ỆỄỂ ưƯ ơƠ"), "EEE uU oO");
        assert_eq!(transliterate("日本 😀"), "?? ?");
        let out = transliterate("Tiếng Việt có dấu: ắằẳẵặ ấầẩẫậ éèẻẽẹ íìỉĩị óòỏõọ úùủũụ ýỳỷỹỵ");
        assert!(septets(&out).is_some(), "{out}");
    }

    #[test]
    fn septets_count_the_extension_table_twice() {
        assert_eq!(septets("abc"), Some(3));
        assert_eq!(septets("{€}"), Some(6));
        assert_eq!(septets("ệ"), None);
    }
}
