//! Clients that stall, against the running services: an idle keep-alive connection stays open
//! for what `HTTP_IDLE_TIMEOUT_MS` says, not the 5 s default, and is closed after it; every
//! endpoint that takes a body answers a body that stops arriving with the 408 its OpenAPI
//! document lists.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
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

/// Every operation of `document` that takes a request body, as (method, path with its
/// parameters filled in).
fn operations_with_a_body(document: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            if operation.get("requestBody").is_none() {
                continue;
            }
            let responses = &operation["responses"];
            for status in ["408", "413"] {
                assert!(
                    responses.get(status).is_some(),
                    "{method} {path} does not document {status}"
                );
            }
            let filled = path
                .replace("{item}", "book")
                .replace("{key}", "stalled-body-key")
                .replace("{id}", "00000000-0000-0000-0000-000000000000");
            found.push((method.to_uppercase(), filled));
        }
    }
    found
}

/// Sends `method path` with a head promising 100 bytes of JSON and only 8 of them; returns
/// the status line and the body of the answer, and how long it took.
async fn stalled_body(addr: std::net::SocketAddr, method: &str, path: &str) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Idempotency-Key: stalled-body-key\r\nContent-Length: 100\r\n\r\n{{\"item\":"
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = vec![0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("{method} {path}: no answer and no close within 15 s"),
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn every_endpoint_that_takes_a_body_answers_a_stalled_one_408_as_documented() {
    let system = System::builder().start().await;
    let mut calls = Vec::new();
    for service in [
        Service::Order,
        Service::Inventory,
        Service::Payment,
        Service::Notification,
    ] {
        let document: Value = system
            .client()
            .get(format!("{}/openapi.json", system.url(service)))
            .send()
            .await
            .expect("openapi.json")
            .json()
            .await
            .expect("a JSON document");
        let addr = system.process(service).addr;
        for (method, path) in operations_with_a_body(&document) {
            calls.push(async move {
                let (answer, took) = stalled_body(addr, &method, &path).await;
                (method, path, answer, took)
            });
        }
    }
    let answers = futures_util::future::join_all(calls).await;
    assert!(
        answers.len() >= 6,
        "operations with a body: {}",
        answers.len()
    );
    for (method, path, answer, took) in answers {
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{method} {path}: {answer}"
        );
        assert!(
            answer.ends_with(
                r#"{"error":"The request body stopped arriving before it was complete"}"#
            ),
            "{method} {path}: {answer}"
        );
        assert!(
            took >= Duration::from_millis(4900) && took < Duration::from_secs(8),
            "{method} {path}: answered after {took:?}"
        );
    }
}
