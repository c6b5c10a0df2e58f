//! S2 over HTTP on a real socket: concurrent purchases never overspend a wallet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use tollgate_demo::db::Repository;

use http::{Method, StatusCode};
use support::Harness;
use tokio::sync::Barrier;

async fn put_wallet(h: &Harness, id: &str, balance: i64) -> StatusCode {
    let body = serde_json::json!({ "balance": balance }).to_string();
    h.client
        .send(Method::PUT, &h.url(&format!("/wallets/{id}")), body)
        .await
        .unwrap()
        .status
}

async fn race_purchases(
    h: &Arc<Harness>,
    wallet: &str,
    buyers: usize,
    price: i64,
) -> (usize, usize) {
    let gate = Arc::new(Barrier::new(buyers));
    let tasks: Vec<_> = (0..buyers)
        .map(|i| {
            let (h, gate, wallet) = (Arc::clone(h), Arc::clone(&gate), wallet.to_owned());
            tokio::spawn(async move {
                gate.wait().await;
                let body = serde_json::json!({ "item": format!("drink-{i}"), "price": price });
                h.post(&format!("/wallets/{wallet}/purchases"), body).await
            })
        })
        .collect();
    let (mut sold, mut refused) = (0, 0);
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::CREATED => sold += 1,
            StatusCode::CONFLICT => {
                let body = answer.json();
                assert_eq!(body["error"].as_str(), Some("insufficient_funds"));
                let balance = body["balance"].as_i64().expect("the balance, a number");
                assert!((0..price).contains(&balance), "refused at {balance}");
                assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
                refused += 1;
            }
            other => panic!("unexpected {other}: {:?}", answer.json()),
        }
    }
    (sold, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_http_two_hundred_buyers_one_drink_of_budget_sells_exactly_one() {
    let h = Arc::new(Harness::start().await);
    assert_eq!(put_wallet(&h, "w1", 1_000).await, StatusCode::CREATED);
    assert_eq!(race_purchases(&h, "w1", 200, 1_000).await, (1, 199));
    let wallet = h.get("/wallets/w1").await.json();
    assert_eq!(wallet["balance"], 0);
    assert_eq!(h.service.app().db().purchases("w1").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_http_budget_for_ten_sells_exactly_ten_and_never_goes_negative() {
    let h = Arc::new(Harness::start().await);
    assert_eq!(put_wallet(&h, "w2", 1_000).await, StatusCode::CREATED);
    assert_eq!(race_purchases(&h, "w2", 300, 100).await, (10, 290));
    assert_eq!(h.get("/wallets/w2").await.json()["balance"], 0);
    assert_eq!(h.service.app().db().purchases("w2").await.unwrap(), 10);
    // Topping up is a plain update: 200, and the wallet sells again.
    assert_eq!(put_wallet(&h, "w2", 150).await, StatusCode::OK);
    assert_eq!(race_purchases(&h, "w2", 50, 100).await, (1, 49));
    assert_eq!(h.get("/wallets/w2").await.json()["balance"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_http_unknown_wallet_is_404() {
    let h = Harness::start().await;
    let answer = h
        .post(
            "/wallets/nobody/purchases",
            serde_json::json!({ "item": "cola", "price": 1 }),
        )
        .await;
    assert_eq!(
        (answer.status, answer.json()["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_wallet"))
    );
    assert_eq!(h.get("/wallets/nobody").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_http_purchase_retried_under_one_idempotency_key_is_charged_once() {
    let h = Arc::new(Harness::start().await);
    assert_eq!(put_wallet(&h, "w3", 1_000).await, StatusCode::CREATED);
    let body = serde_json::json!({ "item": "cola", "price": 10 });
    let gate = Arc::new(Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (h, gate, body) = (Arc::clone(&h), Arc::clone(&gate), body.clone());
            tokio::spawn(async move {
                gate.wait().await;
                h.client
                    .post_with(
                        &h.url("/wallets/w3/purchases"),
                        &[("idempotency-key", "buy-1")],
                        &body,
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut fresh, mut replayed, mut in_use) = (Vec::new(), 0, 0);
    for task in tasks {
        let answer = task.await.unwrap();
        let replay = answer
            .headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        match (answer.status, replay) {
            (StatusCode::CREATED, false) => fresh.push(answer.body),
            (StatusCode::CREATED, true) => replayed += 1,
            (StatusCode::CONFLICT, false) => {
                assert_eq!(
                    answer.json()["error"].as_str(),
                    Some("idempotency_key_in_use")
                );
                in_use += 1;
            }
            other => panic!("unexpected {other:?}: {:?}", answer.json()),
        }
    }
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh.len() + replayed + in_use, 100);
    assert_eq!(h.service.app().db().purchases("w3").await.unwrap(), 1);
    assert_eq!(h.get("/wallets/w3").await.json()["balance"], 990);

    // A retry later replays the stored answer, byte for byte, and charges nothing.
    let retry = h
        .client
        .post_with(
            &h.url("/wallets/w3/purchases"),
            &[("idempotency-key", "buy-1")],
            &body,
        )
        .await
        .unwrap();
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(retry.body, fresh[0]);
    // The same key for another purchase is refused; no key at all is a new purchase.
    let other = serde_json::json!({ "item": "juice", "price": 10 });
    let reused = h
        .client
        .post_with(
            &h.url("/wallets/w3/purchases"),
            &[("idempotency-key", "buy-1")],
            &other,
        )
        .await
        .unwrap();
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        h.post("/wallets/w3/purchases", other).await.status,
        StatusCode::CREATED
    );
    assert_eq!(h.get("/wallets/w3").await.json()["balance"], 980);
}
