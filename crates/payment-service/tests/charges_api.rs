//! payment-service's API through its typed client, served in-process on a real socket.

use std::time::Duration;

use payment_service::{PaymentClient, api::ChargeRequest, router};

async fn start() -> PaymentClient {
    let addr = service_kit::serve::spawn_local(router(Default::default()))
        .await
        .expect("serve");
    let http = telemetry::http_client(Duration::from_secs(5)).expect("client");
    PaymentClient::new(format!("http://{addr}").parse().expect("url"), http)
}

fn charge(item: &str, amount: f64) -> ChargeRequest {
    ChargeRequest {
        item: item.into(),
        amount,
    }
}

#[tokio::test]
async fn a_valid_charge_gets_a_charge_id() {
    let payment = start().await;
    let first = payment
        .charge(&charge("book", 19.98), "k1")
        .await
        .expect("charged");
    assert_eq!(first.status, "succeeded");
    assert_eq!(first.amount, 19.98);
    assert!(uuid_like(&first.charge_id), "{}", first.charge_id);
    let other = payment
        .charge(&charge("book", 0.0), "k2")
        .await
        .expect("a free item is still a charge");
    assert_ne!(other.charge_id, first.charge_id);
}

#[tokio::test]
async fn the_same_key_is_never_charged_twice() {
    let payment = start().await;
    let first = payment
        .charge(&charge("pen", 3.0), "order:42")
        .await
        .expect("charged");
    let again = payment
        .charge(&charge("pen", 3.0), "order:42")
        .await
        .expect("replayed");
    assert_eq!(again, first, "a retry returns the first charge");
    let different = payment
        .charge(&charge("pen", 4.0), "order:42")
        .await
        .expect_err("refused");
    assert_eq!(different.status().map(|s| s.as_u16()), Some(422));
}

#[tokio::test]
async fn invalid_charges_are_400() {
    let payment = start().await;
    for (n, (item, amount)) in [("book", -1.0), ("../x", 1.0), ("", 1.0)]
        .into_iter()
        .enumerate()
    {
        let error = payment
            .charge(&charge(item, amount), &format!("bad{n}"))
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
