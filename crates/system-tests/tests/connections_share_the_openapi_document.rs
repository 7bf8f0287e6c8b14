//! A service's memory per open connection does not grow with its OpenAPI document.
//!
//! axum clones each route's handler for every connection it accepts. When `GET /openapi.json`
//! owned the document, each connection deep-copied it: with the four services' small documents
//! that was most of inventory-service's heap under load (heaptrack), and it grows with every
//! documented route. This test serves a large document and keeps many connections open; it has a
//! file (a test binary) to itself because it reads the process's resident memory.

use std::time::Duration;

use system_tests::rss_bytes_of;

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use utoipa::openapi::{
    Info, OpenApiBuilder, PathItem, PathsBuilder,
    path::{HttpMethod, OperationBuilder},
};

/// Open connections held at once.
const CONNECTIONS: usize = 48;

/// A document of `routes` routes, each with a description, a few MB in memory.
fn large_document(routes: usize) -> utoipa::openapi::OpenApi {
    let mut paths = PathsBuilder::new();
    for i in 0..routes {
        let operation = OperationBuilder::new()
            .operation_id(Some(format!("operation_{i}")))
            .description(Some(format!(
                "route {i}: {}",
                "documented at length ".repeat(8)
            )))
            .build();
        paths = paths.path(
            format!("/route/{i}"),
            PathItem::new(HttpMethod::Get, operation),
        );
    }
    OpenApiBuilder::new()
        .info(Info::new("large", "1"))
        .paths(paths)
        .build()
}

/// One `GET path` on `stream` (kept open), returning the response's body.
async fn get(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buffer).await.expect("read");
        assert!(n > 0, "connection closed before the response ended");
        response.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .expect("a Content-Length");
            if body.len() >= length {
                return body[..length].to_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_do_not_each_copy_the_openapi_document() {
    let document = large_document(4_000);
    let expected = serde_json::to_value(&document).expect("the document serializes");
    let serialized = serde_json::to_vec(&document)
        .expect("the document serializes")
        .len() as u64;
    let app = service_kit::app::api(axum::Router::new(), document);
    let addr = service_kit::serve::spawn_local(app).await.expect("serve");

    let mut first = TcpStream::connect(addr).await.expect("connect");
    let served: serde_json::Value =
        serde_json::from_str(&get(&mut first, "/openapi.json").await).expect("JSON");
    assert_eq!(served, expected, "GET /openapi.json serves the document");

    let before = rss_bytes_of(std::process::id()).expect("VmRSS in /proc/self/status");
    let mut open = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let body = tokio::time::timeout(Duration::from_secs(10), get(&mut stream, "/health"))
            .await
            .expect("GET /health answered");
        assert!(body.contains("ok"), "{body}");
        open.push(stream);
    }
    let grown = rss_bytes_of(std::process::id())
        .expect("VmRSS in /proc/self/status")
        .saturating_sub(before);

    // Each copy would cost more than the serialized document (its strings and maps, in small
    // allocations); half of it per connection in all is far above what a connection needs.
    let limit = serialized * CONNECTIONS as u64 / 2;
    assert!(
        grown < limit,
        "{CONNECTIONS} open connections grew the process by {grown} bytes (limit {limit}; the document is {serialized} bytes serialized)"
    );
    drop(open);
}
