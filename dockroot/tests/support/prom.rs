//! The Prometheus text format read back, as a scraper reads it, and the real tools around it:
//! `promtool check metrics`, node_exporter started on a free localhost port and stopped by
//! its pid, and a plain HTTP/1.0 GET.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::harness::Failed;

/// A series: its name and labels.
pub type Series = (String, BTreeMap<String, String>);

/// Parses the samples of an exposition (comments skipped); fails on a duplicate series.
pub fn parse(text: &str) -> Result<BTreeMap<Series, f64>, Failed> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => return Err(format!("bad sample line {line:?}").into()),
        };
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let mut key = String::new();
            let end;
            loop {
                let (i, c) = chars
                    .next()
                    .ok_or_else(|| format!("unterminated labels in {line:?}"))?;
                match c {
                    '}' => {
                        end = i + 1;
                        break;
                    }
                    ',' | ' ' => {}
                    '=' => {
                        let mut value = String::new();
                        if chars.next().map(|(_, c)| c) != Some('"') {
                            return Err(format!("unquoted label value in {line:?}").into());
                        }
                        loop {
                            let (_, c) = chars.next().ok_or("unterminated label value")?;
                            match c {
                                '\\' => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(c) => value.push(c),
                                    None => return Err("dangling escape".into()),
                                },
                                '"' => break,
                                c => value.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            }
            rest = &body[end..];
        }
        let value_text = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| format!("no value in {line:?}"))?;
        let value = match value_text {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| format!("bad value in {line:?}"))?,
        };
        if out.insert((name.to_string(), labels), value).is_some() {
            return Err(format!("duplicate series {line:?}").into());
        }
    }
    Ok(out)
}

/// `promtool check metrics` on `text`: its verdict (and what it said).
pub fn promtool(text: &str) -> Result<(), Failed> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool (Debian package prometheus): {e}"))?;
    child
        .stdin
        .take()
        .ok_or("stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "promtool check metrics: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// `GET path` over HTTP/1.0: the status code and the body.
pub fn get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

/// A free localhost port (bound, then released for the server to take).
pub fn free_port() -> Result<u16, Failed> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Polls `GET addr/metrics` until it answers 200, up to `deadline`.
pub fn wait_for_metrics(
    addr: &str,
    child: &mut Child,
    deadline: Duration,
) -> Result<String, Failed> {
    let start = Instant::now();
    loop {
        if let Ok((200, body)) = get(addr, "/metrics") {
            return Ok(body);
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!("the server on {addr} exited: {status}").into());
        }
        if start.elapsed() > deadline {
            return Err(format!("no answer on {addr} within {deadline:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Debian's node_exporter with only the btrfs collector, on a free localhost port; killed by
/// its pid on drop.
pub struct NodeExporter {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl NodeExporter {
    /// Starts it and waits until it serves.
    pub fn start(log_dir: &Path) -> Result<NodeExporter, Failed> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let log = std::fs::File::create(log_dir.join("node_exporter.log"))?;
        let mut child = Command::new("prometheus-node-exporter")
            .args([
                "--collector.disable-defaults",
                "--collector.btrfs",
                &format!("--web.listen-address={addr}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("prometheus-node-exporter (Debian package): {e}"))?;
        wait_for_metrics(&addr, &mut child, Duration::from_secs(30))?;
        Ok(NodeExporter { child, addr })
    }

    /// One scrape.
    pub fn scrape(&self) -> Result<String, Failed> {
        match get(&self.addr, "/metrics")? {
            (200, body) => Ok(body),
            (code, body) => Err(format!("node_exporter answered {code}: {body}").into()),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The series of `all` named `node_btrfs_*` for filesystem `uuid`.
pub fn node_btrfs_of(all: &BTreeMap<Series, f64>, uuid: &str) -> BTreeMap<Series, f64> {
    all.iter()
        .filter(|((name, labels), _)| {
            name.starts_with("node_btrfs_") && labels.get("uuid").map(String::as_str) == Some(uuid)
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}
