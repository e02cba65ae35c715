//! A small SMTP server inside the test process: it speaks just enough plain SMTP (EHLO/HELO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT) on a loopback port to capture the messages the app
//! sends, and decodes their text bodies (quoted-printable or base64) for the assertions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use toxtemp::config::{SmtpConfig, SmtpTls};

/// One message as the server received it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message (headers and encoded body).
    pub data: String,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .split("\r\n\r\n")
            .next()?
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }

    /// The text body, decoded.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        match self.header("Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase().as_str() {
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => {
                let joined: String = body.split_whitespace().collect();
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(joined).expect("base64 body"))
                    .expect("utf-8 body")
            }
            _ => body.to_owned(),
        }
    }

    /// The first link in the body.
    pub fn link(&self) -> String {
        let body = self.body();
        let start = body.find("http").expect("a link in the mail");
        body[start..].split_whitespace().next().unwrap().to_owned()
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 3 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 body")
}

pub struct TestSmtp {
    pub port: u16,
    mails: Arc<Mutex<Vec<Captured>>>,
}

impl TestSmtp {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let mails: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let store = mails.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = converse(stream, store).await;
                });
            }
        });
        Self { port, mails }
    }

    /// The app's SMTP settings for this server (no TLS, no login).
    pub fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            username: None,
            password: None,
            from: "ToxTempAssistant <noreply@example.org>".into(),
            tls: SmtpTls::None,
            timeout: Duration::from_secs(5),
        }
    }

    pub fn mails(&self) -> Vec<Captured> {
        self.mails.lock().unwrap().clone()
    }

    /// Wait (up to 10 s) until `n` mails arrived and return them.
    pub async fn wait_for(&self, n: usize) -> Vec<Captured> {
        for _ in 0..200 {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} mail(s), got {}", self.mails().len());
    }
}

async fn converse(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Captured>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test.local ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-test.local\r\n250 8BITMIME\r\n",
            "HELO" | "RSET" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                from = command[10..].trim().to_owned();
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(command[8..].trim().to_owned());
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
                }
                store.lock().unwrap().push(Captured { from: from.clone(), to: to.clone(), data });
                b"250 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}
