//! A real SMTP server inside the test process: it speaks enough of RFC 5321
//! for lettre (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and keeps every
//! message it accepts, decoded, for the tests to read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    /// The message as received (headers and encoded body).
    pub raw: String,
    /// The text part (or the whole body of a single-part mail), decoded.
    pub body: String,
    /// The HTML part of a `multipart/alternative` mail, decoded.
    pub html: Option<String>,
    /// The decoded `Subject` header.
    pub subject: String,
}

impl Mail {
    /// The HTML part with the escapes a link's `&` and `/` get undone, to
    /// look for a link of the text part in it.
    pub fn html_with_plain_links(&self) -> String {
        self.html
            .as_deref()
            .expect("an HTML part")
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// Connections accepted so far.
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        SmtpSink::start_on(0).await
    }

    /// Listens on a given port (0 = any free one).
    pub async fn start_on(port: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind SMTP sink");
        let port = listener.local_addr().expect("sink address").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(session(socket, store.clone()));
            }
        });
        SmtpSink {
            port,
            mails,
            connections,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("sink lock").clone()
    }

    pub fn mails_to(&self, address: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == address))
            .collect()
    }

    /// Waits until `count` messages to `address` arrived, or panics after 10 s.
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<Mail> {
        for _ in 0..200 {
            let mails = self.mails_to(address);
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {count} mail(s) to {address}, got {:?}",
            self.mails_to(address)
        );
    }
}

async fn session(socket: tokio::net::TcpStream, mails: Arc<Mutex<Vec<Mail>>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 sink ESMTP ready\r\n").await;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if command.starts_with("MAIL FROM") {
            to.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO") {
            let address = line.trim_end()[8..]
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            to.push(address.to_lowercase());
            b"250 OK\r\n"
        } else if command == "DATA" {
            let _ = write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
            let mut raw = String::new();
            loop {
                line.clear();
                match lines.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                raw.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            let (subject, body, html) = decode(&raw);
            mails.lock().expect("sink lock").push(Mail {
                to: to.clone(),
                raw,
                body,
                html,
                subject,
            });
            b"250 OK queued\r\n"
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            // RSET, NOOP and anything else.
            b"250 OK\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// The subject, the text and the HTML of a message, parsed as MIME by
/// `mailparse` (not by anything the sending side shares).
fn decode(raw: &str) -> (String, String, Option<String>) {
    let Ok(parsed) = mailparse::parse_mail(raw.as_bytes()) else {
        return (String::new(), raw.to_owned(), None);
    };
    let subject = mailparse::MailHeaderMap::get_first_value(&parsed.get_headers(), "Subject").unwrap_or_default();
    let part = |mime: &str| {
        std::iter::once(&parsed)
            .chain(parsed.subparts.iter())
            .find(|p| p.ctype.mimetype == mime)
            .and_then(|p| p.get_body().ok())
    };
    let body = part("text/plain").unwrap_or_default();
    (subject, body, part("text/html"))
}
