//! A fake SMTP server for the tests that read what the vault mails: the minimal dialogue, every
//! message kept.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One message the server received.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope sender, as sent.
    pub from: String,
    /// The envelope recipients, as sent.
    pub to: Vec<String>,
    /// The message text, headers and body, up to the closing dot.
    pub text: String,
}

/// The messages a server received, oldest first.
pub type Inbox = Arc<Mutex<Vec<Mail>>>;

/// Starts a server on a free loopback port, on a thread of its own (so that it outlives the
/// runtime of the test that started it): its port and its inbox.
pub fn start() -> (u16, Inbox) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let inbox = Inbox::default();
    let kept = inbox.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                let inbox = kept.clone();
                tokio::spawn(async move {
                    let _ = converse(stream, inbox).await;
                });
            }
        });
    });
    (port, inbox)
}

async fn converse(stream: tokio::net::TcpStream, inbox: Inbox) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 fake.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") || command.starts_with("HELO") {
            write.write_all(b"250 fake.test\r\n").await?;
        } else if command.starts_with("MAIL FROM:") {
            from = line.trim_end()[10..].trim().to_owned();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if command.starts_with("RCPT TO:") {
            to.push(line.trim_end()[8..].trim().to_owned());
            write.write_all(b"250 OK\r\n").await?;
        } else if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut text = String::new();
            while !text.ends_with("\r\n.\r\n") && !text.ends_with("\n.\n") {
                let mut more = String::new();
                if lines.read_line(&mut more).await? == 0 {
                    return Ok(());
                }
                text.push_str(&more);
            }
            inbox.lock().expect("inbox").push(Mail { from: from.clone(), to: to.clone(), text });
            write.write_all(b"250 OK queued\r\n").await?;
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP and the like.
            write.write_all(b"250 OK\r\n").await?;
        }
    }
}
