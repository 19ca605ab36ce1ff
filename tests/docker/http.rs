//! A minimal HTTP/1.0 client for the page a container serves on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use testkit::harness::Failed;

/// A port free on 127.0.0.1 right now (the kernel's pick for port 0).
pub fn free_port() -> Result<u16, Failed> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `GET path` on 127.0.0.1:`port`: the status code and the body.
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP reply: {head:?}")))?;
    Ok((status, body.to_string()))
}

/// Polls `GET path` until it answers 200 or `timeout` passes; the body.
pub fn wait_for_page(port: u16, path: &str, timeout: Duration) -> Result<String, Failed> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match get(port, path) {
            Ok((200, body)) => return Ok(body),
            Ok((status, body)) => format!("status {status}: {body}"),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(
                format!("no page at 127.0.0.1:{port}{path} within {timeout:?}: {last}").into(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
