//! The Docker Engine API over its unix socket: `GET /info`, and whether the daemon answers.
//!
//! One synchronous HTTP/1.1 GET per call over `std::os::unix::net::UnixStream`, parsed with
//! `httparse` (status line, headers, chunked or sized body). The full clients (hyper +
//! hyperlocal, bollard) bring an async runtime and about 30 crates for this one request.

use serde::Deserialize;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most of a response body read (`/info` is a few KiB).
const MAX_RESPONSE: u64 = 8 << 20;

/// Why the Engine API gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Nothing listens on the socket (or it does not exist).
    #[error("the Docker daemon does not answer on {}: {source}", socket.display())]
    Unreachable {
        /// The socket.
        socket: PathBuf,
        /// The cause (ENOENT, ECONNREFUSED, a timeout...).
        source: std::io::Error,
    },
    /// It answered, but not with what was asked for.
    #[error("the Docker daemon on {} answered GET {path} with {detail}", socket.display())]
    BadResponse {
        /// The socket.
        socket: PathBuf,
        /// The request path.
        path: String,
        /// What was wrong.
        detail: String,
    },
}

/// What `GET /info` says about storage (the fields this tool reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Info {
    /// The storage driver in use, e.g. `btrfs` or `overlay2`.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// The data root.
    #[serde(rename = "DockerRootDir")]
    pub docker_root_dir: PathBuf,
    /// The daemon's version.
    #[serde(rename = "ServerVersion", default)]
    pub server_version: String,
    /// The driver's own status lines, e.g. `[["driver-type", "io.containerd.snapshotter.v1"]]`
    /// when the containerd image store is in use.
    #[serde(rename = "DriverStatus", default)]
    pub driver_status: Option<Vec<Vec<String>>>,
    /// The containerd the daemon talks to (Engine API 1.46+, Docker 27.3 and later); absent
    /// from older daemons.
    #[serde(rename = "Containerd", default)]
    pub containerd: Option<ContainerdInfo>,
}

/// `GET /info`'s `Containerd` object: which containerd dockerd uses, and its namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContainerdInfo {
    /// containerd's API socket: `<exec-root>/containerd/containerd.sock` for the containerd
    /// dockerd starts itself, another path (typically `/run/containerd/containerd.sock`) for a
    /// system containerd.
    #[serde(rename = "Address", default)]
    pub address: PathBuf,
    /// The containerd namespaces dockerd uses.
    #[serde(rename = "Namespaces", default)]
    pub namespaces: Option<ContainerdNamespaces>,
}

/// The containerd namespaces of a dockerd.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContainerdNamespaces {
    /// Containers and images (`moby`).
    #[serde(rename = "Containers", default)]
    pub containers: String,
    /// Plugins (`plugins.moby`).
    #[serde(rename = "Plugins", default)]
    pub plugins: String,
}

impl Info {
    /// Whether images live in containerd's snapshotter (the containerd image store) rather
    /// than in the graph driver under the data root.
    pub fn uses_containerd_snapshotter(&self) -> bool {
        self.driver_status.iter().flatten().any(|pair| {
            pair.first().map(String::as_str) == Some("driver-type")
                && pair
                    .get(1)
                    .is_some_and(|t| t.starts_with("io.containerd.snapshotter"))
        })
    }
}

/// A client of one daemon's socket.
#[derive(Debug, Clone)]
pub struct Engine {
    socket: PathBuf,
    timeout: Duration,
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Engine {
    /// A client of the daemon listening on `socket`, giving up after 5 s.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Engine {
            socket: socket.into(),
            timeout: Duration::from_secs(5),
        }
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether the daemon answers `GET /_ping` with `OK`.
    pub fn ping(&self) -> bool {
        self.get("/_ping")
            .is_ok_and(|r| r.status == 200 && r.body.starts_with(b"OK"))
    }

    /// `GET /info`.
    pub fn info(&self) -> Result<Info, EngineError> {
        let response = self.get("/info")?;
        if response.status != 200 {
            return Err(self.bad(
                "/info",
                format!("HTTP {}: {}", response.status, message(&response.body)),
            ));
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| self.bad("/info", format!("unexpected JSON ({e})")))
    }

    fn bad(&self, path: &str, detail: String) -> EngineError {
        EngineError::BadResponse {
            socket: self.socket.clone(),
            path: path.into(),
            detail,
        }
    }

    fn get(&self, path: &str) -> Result<Response, EngineError> {
        let unreachable = |source| EngineError::Unreachable {
            socket: self.socket.clone(),
            source,
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(unreachable)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockroot/{}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        stream.write_all(request.as_bytes()).map_err(unreachable)?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .map_err(unreachable)?;
        parse_response(&raw).map_err(|detail| self.bad(path, detail))
    }
}

/// The `message` of a Docker error body, or the body as text.
fn message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().to_string())
}

/// Parses a whole HTTP/1.1 response read to the end of the connection.
fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("a truncated response".into()),
        Err(e) => return Err(format!("a malformed response ({e})")),
    };
    let status = response.code.ok_or("no status code")?;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let rest = &raw[head_len..];
    let body = if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("a bad Content-Length {length:?}"))?;
        rest.get(..length)
            .ok_or("a body shorter than its Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let (offset, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Err("a truncated chunked body".into()),
            Err(_) => return Err("a malformed chunk size".into()),
        };
        let size = usize::try_from(size).map_err(|_| "a chunk too large")?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(offset..offset + size).ok_or("a truncated chunk")?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(offset + size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or("a chunk without its CRLF")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn parses_sized_chunked_and_close_delimited_bodies() {
        let sized =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOKextra";
        let r = parse_response(sized).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"OK"[..]));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().body, b"{\"a\":1}");
        let closed = b"HTTP/1.0 500 Internal Server Error\r\n\r\n{\"message\":\"boom\"}";
        let r = parse_response(closed).unwrap();
        assert_eq!((r.status, message(&r.body)), (500, "boom".to_string()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Le").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"")
                .is_err()
        );
    }

    #[test]
    fn reads_info_from_a_socket_and_reports_an_absent_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let n = conn.read(&mut request).unwrap();
            let body = r#"{"Driver":"btrfs","DockerRootDir":"/var/lib/docker","ServerVersion":"20.10.24","DriverStatus":[["Btrfs",""]]}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            );
            conn.write_all(reply.as_bytes()).unwrap();
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let info = Engine::new(&socket).info().unwrap();
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /info HTTP/1.1\r\n"), "{request}");
        assert_eq!(info.driver, "btrfs");
        assert_eq!(info.docker_root_dir, Path::new("/var/lib/docker"));
        assert!(!info.uses_containerd_snapshotter());
        drop(std::fs::remove_file(&socket));
        let e = Engine::new(&socket).info().unwrap_err();
        assert!(matches!(e, EngineError::Unreachable { .. }), "{e}");
        assert!(!Engine::new(&socket).ping());
    }
}
