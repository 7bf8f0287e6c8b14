//! payment-service's API through its typed client, served in-process on a real socket.

use std::time::Duration;

use payment_service::{
    PaymentClient,
    api::{ChargeRequest, ChargeState},
    faults::PaymentFaults,
    router,
};
use service_kit::faults::Faults;

async fn start_with(faults: PaymentFaults) -> (PaymentClient, String) {
    let app = router(Default::default(), Faults::new(faults));
    let addr = service_kit::serve::spawn_local(app).await.expect("serve");
    let http = telemetry::http_client(Duration::from_secs(5)).expect("client");
    let url = format!("http://{addr}");
    (PaymentClient::new(url.parse().expect("url"), http), url)
}

async fn start() -> PaymentClient {
    start_with(PaymentFaults::default()).await.0
}

fn charge(item: &str, amount_cents: i64) -> ChargeRequest {
    ChargeRequest {
        item: item.into(),
        amount_cents,
    }
}

#[tokio::test]
async fn a_valid_charge_gets_a_charge_id() {
    let payment = start().await;
    let first = payment
        .charge(&charge("book", 1998), "k1")
        .await
        .expect("charged");
    assert_eq!(first.status, "succeeded");
    assert_eq!(first.amount_cents, 1998);
    assert!(uuid_like(&first.charge_id), "{}", first.charge_id);
    let other = payment
        .charge(&charge("book", 0), "k2")
        .await
        .expect("a free item is still a charge");
    assert_ne!(other.charge_id, first.charge_id);
}

#[tokio::test]
async fn the_same_key_is_never_charged_twice() {
    let payment = start().await;
    let first = payment
        .charge(&charge("pen", 300), "order:42")
        .await
        .expect("charged");
    let again = payment
        .charge(&charge("pen", 300), "order:42")
        .await
        .expect("replayed");
    assert_eq!(again, first, "a retry returns the first charge");
    let different = payment
        .charge(&charge("pen", 400), "order:42")
        .await
        .expect_err("refused");
    assert_eq!(different.status().map(|s| s.as_u16()), Some(422));
}

#[tokio::test]
async fn invalid_charges_are_400() {
    let payment = start().await;
    for (n, (item, amount)) in [("book", -1), ("../x", 1), ("", 1)].into_iter().enumerate() {
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

#[tokio::test]
async fn a_charge_without_a_key_is_refused() {
    let (_, url) = start_with(PaymentFaults::default()).await;
    let answer = reqwest::Client::new()
        .post(format!("{url}/charges"))
        .json(&serde_json::json!({"item": "book", "amount_cents": 999}))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 400);
}

#[tokio::test]
async fn a_charge_in_doubt_is_settled_one_way_or_the_other() {
    // The provider charges, then answers 300 ms late: a caller with 100 ms gives up.
    let (payment, _) = start_with(PaymentFaults {
        answer_delay_ms: 300,
        ..PaymentFaults::default()
    })
    .await;
    let impatient = payment.within(Duration::from_millis(100));
    assert!(
        impatient
            .charge(&charge("mug", 1234), "late")
            .await
            .is_err()
    );
    let settled = payment.settle("late").await.expect("settled");
    assert_eq!(settled.state, ChargeState::Charged);
    assert_eq!(settled.charge.expect("the charge").amount_cents, 1234);
    // A key never charged is cancelled, and a charge that comes after is refused.
    let never = payment.settle("never").await.expect("settled");
    assert_eq!(never.state, ChargeState::Cancelled);
    let late_charge = payment.charge(&charge("mug", 1234), "never").await;
    assert_eq!(
        late_charge
            .err()
            .and_then(|e| e.status())
            .map(|s| s.as_u16()),
        Some(409)
    );
    assert_eq!(
        payment
            .charge_of("never")
            .await
            .expect("answer")
            .map(|r| r.state),
        Some(ChargeState::Cancelled)
    );
    assert_eq!(payment.charge_of("unknown").await.expect("answer"), None);
}

#[tokio::test]
async fn a_refund_is_made_once() {
    let payment = start().await;
    payment
        .charge(&charge("pen", 30), "r")
        .await
        .expect("charged");
    for _ in 0..2 {
        let refunded = payment.refund("r").await.expect("refunded");
        assert_eq!(refunded.state, ChargeState::Refunded);
    }
    let status = payment
        .refund("nothing")
        .await
        .err()
        .and_then(|e| e.status());
    assert_eq!(status.map(|s| s.as_u16()), Some(404));
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|&c| c == '-').count() == 4
}
