//! A short description of the browser and system a request came from
//! ("Firefox, Linux"), for notices. Built only from names this module knows:
//! the `User-Agent` header is the sender's to choose, so none of its text
//! ever reaches a mail.

/// Browsers in the order they must be tested: each later one's token also
/// appears in the user agents of the earlier ones (Edge says "Chrome", Chrome
/// says "Safari").
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("YaBrowser/", "Yandex Browser"),
    ("coc_coc_browser/", "Cốc Cốc"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-requests/", "Python"),
    ("okhttp/", "OkHttp"),
];

const SYSTEMS: &[(&str, &str)] = &[
    ("Windows", "Windows"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
];

/// "Browser, system", or whichever of the two is known; `None` when
/// neither is.
pub fn describe(user_agent: Option<&str>) -> Option<String> {
    let ua = user_agent?;
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(token, _)| ua.contains(token))
            .map(|(_, name)| *name)
    };
    match (find(BROWSERS), find(SYSTEMS)) {
        (Some(browser), Some(system)) => Some(format!("{browser}, {system}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn common_user_agents_get_short_names() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox, Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge, Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari, iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome, Android",
            ),
            ("curl/8.5.0", "curl"),
        ];
        for (ua, expected) in cases {
            assert_eq!(describe(Some(ua)).as_deref(), Some(expected), "{ua}");
        }
    }

    #[test]
    fn nothing_of_the_header_itself_reaches_the_description() {
        assert_eq!(describe(Some("<a href=https://evil.example>Click</a>")), None);
        assert_eq!(
            describe(Some("Evil/1.0 (Windows) call +1-555-0100")).as_deref(),
            Some("Windows")
        );
        assert_eq!(describe(None), None);
    }
}
