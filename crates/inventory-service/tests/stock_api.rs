//! inventory-service's API through its typed client and raw HTTP, served in-process on a real
//! socket.

use std::time::Duration;

use inventory_service::{InventoryClient, StockBook, router};
use serde_json::json;

async fn start(stock: &[(&str, u64)]) -> (InventoryClient, String) {
    let book = StockBook::new(stock.iter().map(|(i, n)| (i.to_string(), *n)));
    let addr = service_kit::serve::spawn_local(router(book, Default::default()))
        .await
        .expect("serve");
    let url = format!("http://{addr}");
    let http = telemetry::http_client(Duration::from_secs(5)).expect("client");
    let client = InventoryClient::new(url.parse().expect("url"), http);
    (client, url)
}

#[tokio::test]
async fn reserve_and_release_move_the_stock_level() {
    let (inventory, _) = start(&[("book", 10)]).await;
    assert_eq!(inventory.stock("book").await.expect("stock").available, 10);
    let reservation = inventory.reserve("book", 4).await.expect("reserve");
    assert_eq!((reservation.reserved, reservation.available), (4, 6));
    let release = inventory.release("book", 3).await.expect("release");
    assert_eq!((release.released, release.available), (3, 9));
    assert_eq!(inventory.stock("book").await.expect("stock").available, 9);
}

#[tokio::test]
async fn refusals_have_their_status_and_leave_stock_alone() {
    let (inventory, _) = start(&[("book", 5)]).await;
    let status = |e: service_kit::DownstreamError| e.status().map(|s| s.as_u16());
    assert_eq!(
        inventory.reserve("book", 6).await.map_err(status).err(),
        Some(Some(409))
    );
    assert_eq!(
        inventory.reserve("book", 0).await.map_err(status).err(),
        Some(Some(400))
    );
    assert_eq!(
        inventory.reserve("book", -2).await.map_err(status).err(),
        Some(Some(400))
    );
    assert_eq!(
        inventory.release("book", 0).await.map_err(status).err(),
        Some(Some(400))
    );
    assert_eq!(
        inventory.reserve("unicorn", 1).await.map_err(status).err(),
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
