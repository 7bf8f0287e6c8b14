//! How long a connection may wait for its next request head (`serve::IDLE_CONNECTION_TIMEOUT`),
//! through a real socket: an idle keep-alive connection and a head that never finishes are
//! closed by the server, a body that stops arriving is answered 408, and a request whose answer
//! takes longer than that is not cut.

use std::time::{Duration, Instant};

use axum::{
    Router,
    routing::{get, post},
};
use service_kit::{
    ApiJson,
    serve::{IDLE_CONNECTION_TIMEOUT, spawn_local},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A router with a quick route, one that answers after longer than the idle timeout, and one
/// that reads a JSON body.
fn app() -> Router {
    Router::new()
        .route("/quick", get(|| async { "quick" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(IDLE_CONNECTION_TIMEOUT + Duration::from_millis(700)).await;
                "slow"
            }),
        )
        .route(
            "/echo",
            post(|ApiJson(body): ApiJson<serde_json::Value>| async move { body.to_string() }),
        )
}

/// Reads until the server closes the connection (or `limit` passes); returns what was read and
/// when the close came, or `None` if it did not.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(String, Instant)> {
    let mut read = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Some((String::from_utf8_lossy(&read).into_owned(), Instant::now()));
            }
            Ok(Ok(n)) => read.extend_from_slice(&buffer[..n]),
            Err(_) => return None,
        }
    }
}

/// Opens a connection to `addr` and writes `bytes` on it.
async fn connect_and_send(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("send");
    stream
}

/// The server acted after the idle timeout, not before, and not much later.
fn assert_about_the_idle_timeout(after: Duration, what: &str) {
    assert!(
        after >= IDLE_CONNECTION_TIMEOUT - Duration::from_millis(100)
            && after < IDLE_CONNECTION_TIMEOUT + Duration::from_secs(2),
        "{what} after {after:?}, expected about {IDLE_CONNECTION_TIMEOUT:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let addr = spawn_local(app()).await.expect("serve");
    let mut stream = connect_and_send(addr, b"GET /quick HTTP/1.1\r\nHost: test\r\n\r\n").await;
    let answered = Instant::now();
    let (read, closed) = read_until_closed(&mut stream, IDLE_CONNECTION_TIMEOUT * 3)
        .await
        .expect("the server should close an idle connection");
    assert!(read.starts_with("HTTP/1.1 200"), "answer: {read}");
    assert!(read.ends_with("quick"), "answer: {read}");
    assert_about_the_idle_timeout(closed - answered, "closed");
}

#[tokio::test]
async fn a_request_head_that_never_finishes_is_closed_without_an_answer() {
    let addr = spawn_local(app()).await.expect("serve");
    let started = Instant::now();
    let mut stream =
        connect_and_send(addr, b"POST /quick HTTP/1.1\r\nHost: test\r\nContent-").await;
    let (read, closed) = read_until_closed(&mut stream, IDLE_CONNECTION_TIMEOUT * 3)
        .await
        .expect("the server should close a connection whose head never finishes");
    assert_eq!(read, "", "nothing is answered to half a head");
    assert_about_the_idle_timeout(closed - started, "closed");
}

#[tokio::test]
async fn an_answer_slower_than_the_idle_timeout_still_arrives_and_the_connection_is_kept() {
    let addr = spawn_local(app()).await.expect("serve");
    let mut stream = connect_and_send(addr, b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n").await;
    let mut buffer = vec![0u8; 4096];
    let mut read = String::new();
    while !read.ends_with("slow") {
        let n = tokio::time::timeout(IDLE_CONNECTION_TIMEOUT * 3, stream.read(&mut buffer))
            .await
            .expect("the slow answer should arrive")
            .expect("read");
        assert!(
            n > 0,
            "the server closed the connection mid-request; read {read:?}"
        );
        read.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    assert!(read.starts_with("HTTP/1.1 200"), "answer: {read}");
    // The same connection serves the next request.
    stream
        .write_all(b"GET /quick HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let (read, _) = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    assert!(
        read.starts_with("HTTP/1.1 200") && read.ends_with("quick"),
        "answer: {read}"
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408_and_the_connection_closed() {
    let addr = spawn_local(app()).await.expect("serve");
    let mut stream = connect_and_send(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"item\":",
    )
    .await;
    let started = Instant::now();
    let (read, _) = read_until_closed(&mut stream, IDLE_CONNECTION_TIMEOUT * 3)
        .await
        .expect("an answer, then the connection closed");
    assert_about_the_idle_timeout(started.elapsed(), "answered");
    assert!(read.starts_with("HTTP/1.1 408"), "answer: {read}");
    assert!(
        read.ends_with(r#"{"error":"The request body stopped arriving before it was complete"}"#),
        "answer: {read}"
    );
}

#[tokio::test]
async fn a_body_that_trickles_in_for_longer_than_the_timeout_in_all_is_read_whole() {
    // Pieces 1 s apart, 7 s in all: the timeout is between pieces, not for the whole body.
    let addr = spawn_local(app()).await.expect("serve");
    let body = br#"{"a":1,"b":2,"c":3}"#;
    let mut stream = connect_and_send(
        addr,
        format!(
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    for piece in body.chunks(3) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stream.write_all(piece).await.expect("send a piece");
    }
    let (read, _) = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered");
    assert!(read.starts_with("HTTP/1.1 200"), "answer: {read}");
    assert!(read.ends_with(r#"{"a":1,"b":2,"c":3}"#), "answer: {read}");
}
