//! order-service's lookup endpoint, served in-process on a real socket, with its downstream
//! services pointing at nothing.

use order_service::{AppState, Settings, router};
use tokio_util::task::TaskTracker;

#[tokio::test]
async fn unknown_or_malformed_order_ids_are_json_errors() {
    let settings = Settings::from_lookup(|_| None).expect("defaults");
    let state = AppState::new(&settings, TaskTracker::new(), Default::default()).expect("state");
    let addr = service_kit::serve::spawn_local(router(state))
        .await
        .expect("serve");
    let http = reqwest::Client::new();
    for (id, status) in [
        ("not-a-uuid", 400),
        ("0b6c1c4e-8d4f-4c52-9b1e-2f3a4b5c6d7e", 404),
    ] {
        let response = http
            .get(format!("http://{addr}/orders/{id}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), status, "{id}");
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert!(body["error"].is_string(), "{body}");
    }
}
