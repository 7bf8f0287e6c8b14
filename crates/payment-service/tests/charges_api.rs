//! payment-service's API through its typed client, served in-process on a real socket.

use std::time::Duration;

use payment_service::{PaymentClient, api::ChargeRequest, router};

async fn start() -> PaymentClient {
    let addr = service_kit::serve::spawn_local(router())
        .await
        .expect("serve");
    let http = telemetry::http_client(Duration::from_secs(5)).expect("client");
    PaymentClient::new(format!("http://{addr}").parse().expect("url"), http)
}

#[tokio::test]
async fn a_valid_charge_gets_a_charge_id() {
    let payment = start().await;
    let charge = payment
        .charge(&ChargeRequest {
            item: "book".into(),
            amount: 19.98,
        })
        .await
        .expect("charged");
    assert_eq!(charge.status, "succeeded");
    assert_eq!(charge.amount, 19.98);
    assert!(uuid_like(&charge.charge_id), "{}", charge.charge_id);
    let other = payment
        .charge(&ChargeRequest {
            item: "book".into(),
            amount: 0.0,
        })
        .await
        .expect("a free item is still a charge");
    assert_ne!(other.charge_id, charge.charge_id);
}

#[tokio::test]
async fn invalid_charges_are_400() {
    let payment = start().await;
    for (item, amount) in [("book", -1.0), ("../x", 1.0), ("", 1.0)] {
        let error = payment
            .charge(&ChargeRequest {
                item: item.into(),
                amount,
            })
            .await
            .expect_err("refused");
        assert_eq!(
            error.status().map(|s| s.as_u16()),
            Some(400),
            "{item} {amount}"
        );
    }
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|&c| c == '-').count() == 4
}
