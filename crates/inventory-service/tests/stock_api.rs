//! inventory-service's API through its typed client and raw HTTP, served in-process on a real
//! socket.

use std::time::Duration;

use inventory_service::{InventoryClient, StockBook, api::ReservationState, router};
use serde_json::json;

async fn start(stock: &[(&str, u64)]) -> (InventoryClient, String) {
    let book = StockBook::new(
        stock.iter().map(|(i, n)| (i.to_string(), *n)),
        Duration::from_secs(60),
    );
    let addr = service_kit::serve::spawn_local(router(book, Default::default()))
        .await
        .expect("serve");
    let url = format!("http://{addr}");
    let http = telemetry::http_client(Duration::from_secs(5)).expect("client");
    let client = InventoryClient::new(url.parse().expect("url"), http);
    (client, url)
}

#[tokio::test]
async fn a_reservation_is_held_then_confirmed_or_released_by_its_id() {
    let (inventory, _) = start(&[("book", 10)]).await;
    assert_eq!(inventory.stock("book").await.expect("stock").available, 10);
    let sold = inventory.reserve("book", 4, "a").await.expect("reserve");
    assert_eq!((sold.reserved, sold.available), (4, 6));
    assert_eq!(sold.state, ReservationState::Held);
    assert!(sold.expires_in_ms.is_some_and(|ms| ms > 50_000));
    let back = inventory.reserve("book", 3, "b").await.expect("reserve");
    let confirmed = inventory
        .confirm("book", &sold.reservation_id)
        .await
        .expect("confirm");
    assert_eq!(confirmed.state, ReservationState::Confirmed);
    let released = inventory
        .release("book", &back.reservation_id)
        .await
        .expect("release");
    assert_eq!(released.state, ReservationState::Released);
    let level = inventory.stock("book").await.expect("stock");
    assert_eq!((level.available, level.held, level.sold), (6, 0, 4));
}

#[tokio::test]
async fn retried_calls_take_and_give_back_units_once() {
    let (inventory, _) = start(&[("book", 10)]).await;
    let first = inventory
        .reserve("book", 4, "order:1")
        .await
        .expect("reserve");
    let again = inventory
        .reserve("book", 4, "order:1")
        .await
        .expect("reserve");
    assert_eq!(first.reservation_id, again.reservation_id);
    for _ in 0..3 {
        inventory
            .release("book", &first.reservation_id)
            .await
            .expect("release is idempotent");
    }
    let level = inventory.stock("book").await.expect("stock");
    assert_eq!((level.available, level.held), (10, 0));
    // Confirming a released reservation is refused: its units are someone else's now.
    let status = |e: service_kit::DownstreamError| e.status().map(|s| s.as_u16());
    assert_eq!(
        inventory
            .confirm("book", &first.reservation_id)
            .await
            .map_err(status)
            .err(),
        Some(Some(409))
    );
}

#[tokio::test]
async fn no_request_can_add_units_that_were_not_reserved() {
    let (inventory, url) = start(&[("book", 10)]).await;
    let http = reqwest::Client::new();
    // The old counted release: a quantity tied to nothing.
    let counted = http
        .post(format!("{url}/stock/book/release"))
        .json(&json!({"quantity": 9_223_372_036_854_775_807_i64}))
        .send()
        .await
        .expect("answer");
    assert_eq!(counted.status().as_u16(), 422);
    for id in [
        "00000000-0000-0000-0000-000000000000",
        "9223372036854775807",
        "",
    ] {
        let answer = http
            .post(format!("{url}/stock/book/release"))
            .json(&json!({"reservation_id": id}))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status().as_u16(), 404, "{id}");
    }
    // Another item's reservation cannot be released as this item's.
    let pen = start(&[("pen", 5)]).await.0;
    let theirs = pen.reserve("pen", 1, "k").await.expect("reserve");
    let status = |e: service_kit::DownstreamError| e.status().map(|s| s.as_u16());
    assert_eq!(
        inventory
            .release("book", &theirs.reservation_id)
            .await
            .map_err(status)
            .err(),
        Some(Some(404))
    );
    let level = inventory.stock("book").await.expect("stock");
    assert_eq!(level.available + level.held + level.sold, 10);
}

#[tokio::test]
async fn refusals_have_their_status_and_leave_stock_alone() {
    let (inventory, _) = start(&[("book", 5)]).await;
    let status = |e: service_kit::DownstreamError| e.status().map(|s| s.as_u16());
    assert_eq!(
        inventory
            .reserve("book", 6, "k6")
            .await
            .map_err(status)
            .err(),
        Some(Some(409))
    );
    assert_eq!(
        inventory
            .reserve("book", 0, "k0")
            .await
            .map_err(status)
            .err(),
        Some(Some(400))
    );
    assert_eq!(
        inventory
            .reserve("book", -2, "k-2")
            .await
            .map_err(status)
            .err(),
        Some(Some(400))
    );
    assert_eq!(
        inventory
            .release("book", "not-a-reservation")
            .await
            .map_err(status)
            .err(),
        Some(Some(404))
    );
    assert_eq!(
        inventory
            .reserve("unicorn", 1, "k1")
            .await
            .map_err(status)
            .err(),
        Some(Some(404))
    );
    assert_eq!(
        inventory.stock("unicorn").await.map_err(status).err(),
        Some(Some(404))
    );
    assert_eq!(
        inventory.stock("a?b").await.map_err(status).err(),
        Some(Some(400))
    );
    // A dot segment is refused by the client: sent, it would have been normalised to `/`.
    assert!(matches!(
        inventory.stock("..").await,
        Err(service_kit::DownstreamError::InvalidSegment { .. })
    ));
    assert_eq!(inventory.stock("book").await.expect("stock").available, 5);
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let (_, url) = start(&[("book", 5)]).await;
    let http = reqwest::Client::new();
    let cases = [
        (
            http.post(format!("{url}/stock/book/reserve"))
                .header("content-type", "application/json")
                .body("{"),
            400,
        ),
        (
            http.post(format!("{url}/stock/book/reserve"))
                .json(&json!({"qty": 1})),
            422,
        ),
        (
            http.post(format!("{url}/stock/book/reserve"))
                .json(&json!({"quantity": "1"})),
            422,
        ),
        (
            http.post(format!("{url}/stock/book/reserve"))
                .body("quantity=1"),
            415,
        ),
        (
            http.post(format!("{url}/stock/book/reserve"))
                .header("content-type", "application/json")
                .body(vec![b' '; 20_000]),
            413,
        ),
        (http.get(format!("{url}/nowhere")), 404),
        (http.delete(format!("{url}/stock/book")), 405),
    ];
    for (request, status) in cases {
        let response = request.send().await.expect("answer");
        assert_eq!(response.status().as_u16(), status);
        let body: serde_json::Value = response.json().await.expect("JSON body");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
}
