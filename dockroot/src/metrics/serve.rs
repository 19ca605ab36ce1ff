//! `metrics --listen`: `/metrics` over HTTP (tiny_http), collected afresh for every scrape,
//! one scrape at a time. SIGINT and SIGTERM stop the server.

use super::{collect, Source};
use opskit::Interrupts;
use std::time::Duration;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error("listen on {addr}: {message}; give another address with --listen (default 127.0.0.1:9940)")]
pub struct ServeError {
    addr: String,
    message: String,
}

/// Serves `source` on `addr` until a signal; `ready` is told the bound address.
pub fn serve(
    source: &Source,
    addr: &str,
    mut ready: impl FnMut(std::net::SocketAddr),
) -> Result<(), ServeError> {
    let err = |message: String| ServeError {
        addr: addr.into(),
        message,
    };
    let interrupts = Interrupts::install().map_err(|e| err(e.to_string()))?;
    let server = tiny_http::Server::http(addr).map_err(|e| err(e.to_string()))?;
    if let Some(bound) = server.server_addr().to_ip() {
        ready(bound);
    }
    let header = |k: &str, v: &str| {
        tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header")
    };
    while interrupts.count() == 0 {
        let request = match server.recv_timeout(Duration::from_millis(250)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => return Err(err(e.to_string())),
        };
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let response = match (request.method(), path.as_str()) {
            (tiny_http::Method::Get | tiny_http::Method::Head, "/metrics") => {
                tiny_http::Response::from_string(collect(source).render())
                    .with_header(header("Content-Type", CONTENT_TYPE))
            }
            (tiny_http::Method::Get, "/") => {
                tiny_http::Response::from_string("dockroot metrics: see /metrics\n")
                    .with_header(header("Content-Type", "text/plain; charset=utf-8"))
            }
            _ => {
                tiny_http::Response::from_string("not found: try /metrics\n").with_status_code(404)
            }
        };
        // A client that went away is its own business.
        let _ = request.respond(response);
    }
    Ok(())
}
