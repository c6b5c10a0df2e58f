//! Malformed input gets a 4xx with a JSON error body, never a 500.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http::{Method, StatusCode};
use support::Harness;

struct Case {
    method: Method,
    path: String,
    body: Bytes,
    status: StatusCode,
    error: &'static str,
}

fn case(
    method: Method,
    path: &str,
    body: impl Into<Bytes>,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        method,
        path: path.to_owned(),
        body: body.into(),
        status: StatusCode::from_u16(status).unwrap(),
        error,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_a_4xx_json_error_never_a_500() {
    let h = Harness::start().await;
    let letter = r#"{"date":"2026-11-21","text":"hello"}"#;
    let huge = format!(
        r#"{{"date":"2026-11-21","text":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let post = Method::POST;
    let cases = [
        // Dates that are not calendar dates.
        case(
            post.clone(),
            "/users/alice/daily-reports/2026-02-30",
            "",
            400,
            "invalid_date",
        ),
        case(
            post.clone(),
            "/users/alice/daily-reports/2026-13-01",
            "",
            400,
            "invalid_date",
        ),
        case(
            post.clone(),
            "/users/alice/daily-reports/yesterday",
            "",
            400,
            "invalid_date",
        ),
        case(
            Method::GET,
            "/users/alice/daily-reports/2026-11-2",
            "",
            400,
            "invalid_date",
        ),
        case(
            post.clone(),
            "/naive/users/alice/daily-reports/2026-11-21",
            "",
            404,
            "not_found",
        ),
        case(
            post.clone(),
            "/users/alice/letters",
            r#"{"date":"2026-11-31","text":"x"}"#,
            422,
            "invalid_body",
        ),
        // Ids outside the safe alphabet.
        case(
            post.clone(),
            "/users/al%20ice/letters",
            letter,
            400,
            "invalid_id",
        ),
        case(
            post.clone(),
            &format!("/users/{}/letters", "u".repeat(65)),
            letter,
            400,
            "invalid_id",
        ),
        case(Method::GET, "/wallets/a%2Fb", "", 400, "invalid_id"),
        // Bodies that are not JSON, of the wrong shape, or too large.
        case(
            post.clone(),
            "/users/alice/letters",
            "{not json",
            400,
            "invalid_json",
        ),
        case(
            post.clone(),
            "/users/alice/letters",
            "",
            400,
            "invalid_json",
        ),
        case(
            post.clone(),
            "/users/alice/letters",
            r#"{"date":"2026-11-21"}"#,
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/users/alice/letters",
            r#"{"date":"2026-11-21","text":"x","extra":1}"#,
            422,
            "invalid_body",
        ),
        case(
            post.clone(),
            "/users/alice/letters",
            r#"{"date":"2026-11-21","text":"   "}"#,
            422,
            "invalid_letter",
        ),
        case(
            post.clone(),
            "/users/alice/letters",
            huge,
            413,
            "payload_too_large",
        ),
        case(
            Method::PUT,
            "/wallets/w",
            r#"{"balance":"lots"}"#,
            422,
            "invalid_body",
        ),
        case(
            Method::PUT,
            "/wallets/w",
            r#"{"balance":-5}"#,
            422,
            "invalid_amount",
        ),
        case(
            Method::PUT,
            "/wallets/w",
            r#"{"balance":1e400}"#,
            400,
            "invalid_json",
        ),
        case(
            post.clone(),
            "/wallets/w/purchases",
            r#"{"item":"cola","price":0}"#,
            422,
            "invalid_amount",
        ),
        case(
            post.clone(),
            "/wallets/w/purchases",
            r#"{"item":"","price":5}"#,
            422,
            "invalid_item",
        ),
        case(
            post.clone(),
            "/wallets/w/purchases",
            "[]",
            422,
            "invalid_body",
        ),
        // Routes and methods that do not exist.
        case(Method::GET, "/nope", "", 404, "not_found"),
        case(
            Method::DELETE,
            "/users/alice/daily-reports/2026-11-21",
            "",
            405,
            "method_not_allowed",
        ),
        case(
            Method::GET,
            "/users/alice/letters",
            "",
            405,
            "method_not_allowed",
        ),
    ];
    for c in cases {
        let answer = h
            .client
            .send(c.method.clone(), &h.url(&c.path), c.body.clone())
            .await
            .unwrap();
        let context = format!(
            "{} {} -> {} {:?}",
            c.method,
            c.path,
            answer.status,
            answer.json()
        );
        assert_eq!(answer.status, c.status, "{context}");
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/json"),
            "{context}"
        );
        let json = answer.json();
        assert_eq!(json["error"].as_str(), Some(c.error), "{context}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{context}"
        );
    }
    // Nothing above reached the LLM or stored a letter.
    assert_eq!(h.llm.stats().calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_answer() {
    let h = Harness::start().await;
    let health = h.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.json()["llm_breaker"], "closed");
    h.seed_letters("erin", "2026-11-21", 1).await;
    assert_eq!(
        h.post(
            "/users/erin/daily-reports/2026-11-21",
            serde_json::Value::Null
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let metrics = h.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    for needle in [
        "tollgate_demo_http_requests_total",
        "tollgate_once_calls_total",
        "tollgate_demo_llm_calls_total",
        r#"route="/users/{user}/daily-reports/{date}""#,
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}
