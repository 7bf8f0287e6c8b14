//! `HTTP_IDLE_TIMEOUT_MS` reaches the running services: an idle keep-alive connection to a
//! service process stays open for what the variable says, not the 5 s default, and is closed
//! after it; an order sent after the pause still goes through.

use std::time::{Duration, Instant};

use serde_json::json;
use system_tests::{Service, System};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

#[tokio::test]
async fn an_idle_connection_stays_open_for_http_idle_timeout_ms_and_is_closed_after() {
    let system = System::builder()
        .env("HTTP_IDLE_TIMEOUT_MS", "8000")
        .start()
        .await;
    let before = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 1.0}))
        .await;
    assert_eq!(before.status, 201, "{before:?}");

    let mut stream = TcpStream::connect(system.process(Service::Payment).addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("send");
    let mut buffer = vec![0u8; 4096];
    let n = stream.read(&mut buffer).await.expect("the answer");
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();

    // Past the 5 s default, the connection is still open: nothing to read, no close.
    let early = tokio::time::timeout(Duration::from_secs(6), stream.read(&mut buffer)).await;
    assert!(
        early.is_err(),
        "closed (or sent something) after {:?}, before the 8 s asked for: {early:?}",
        answered.elapsed()
    );
    // And closed once the 8 s are over.
    let late = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await;
    assert!(
        matches!(late, Ok(Ok(0)) | Ok(Err(_))),
        "still open {:?} after the answer: {late:?}",
        answered.elapsed()
    );
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_millis(7900), "closed after {idle:?}");

    // order-service's connections to the others have been idle as long: a new order still goes
    // through.
    let after = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 1.0}))
        .await;
    assert_eq!(after.status, 201, "{after:?}");
}
