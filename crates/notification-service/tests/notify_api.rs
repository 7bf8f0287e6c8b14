//! notification-service's API through its typed client, served in-process on a real socket.

use std::time::Duration;

use notification_service::{NotificationClient, api::NotifyRequest, router};

async fn start() -> NotificationClient {
    let addr = service_kit::serve::spawn_local(router(Default::default()))
        .await
        .expect("serve");
    let http = telemetry::http_client(Duration::from_secs(5)).expect("client");
    NotificationClient::new(format!("http://{addr}").parse().expect("url"), http)
}

#[tokio::test]
async fn a_notification_for_an_order_is_accepted() {
    let notification = start().await;
    let order_id = "0b6c1c4e-8d4f-4c52-9b1e-2f3a4b5c6d7e".to_owned();
    let accepted = notification
        .notify(&NotifyRequest {
            order_id: order_id.clone(),
            item: "pen".into(),
        })
        .await
        .expect("accepted");
    assert_eq!(
        (accepted.order_id, accepted.status.as_str()),
        (order_id, "accepted")
    );
}

#[tokio::test]
async fn invalid_notifications_are_400() {
    let notification = start().await;
    for (order_id, item) in [
        ("not-a-uuid", "pen"),
        ("0b6c1c4e-8d4f-4c52-9b1e-2f3a4b5c6d7e", "a/b"),
    ] {
        let error = notification
            .notify(&NotifyRequest {
                order_id: order_id.into(),
                item: item.into(),
            })
            .await
            .expect_err("refused");
        assert_eq!(
            error.status().map(|s| s.as_u16()),
            Some(400),
            "{order_id} {item}"
        );
    }
}
