//! Contracts from a TOML file: the same plan as in code, policy keys read, unknown keys errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::time::Duration;

use tollgate::plan::{
    Contracts, ContractsFileError, IntentSpec, NodeSpec, OnFailure, Problem, RetrySpec,
};

const ISSUE_EXAMPLE: &str = r#"
[nodes.weather]
outputs = ["weather"]
[nodes.location]
outputs = ["city", "country"]
[intents.trip]
required = ["weather", "city"]
optional = ["news"]
"#;

#[test]
fn the_file_gives_the_same_contracts_as_code() {
    let from_file = Contracts::from_toml(ISSUE_EXAMPLE).unwrap();
    // Tables come in name order.
    let in_code = Contracts::new()
        .node(NodeSpec::new("location").outputs(["city", "country"]))
        .node(NodeSpec::new("weather").outputs(["weather"]))
        .intent(
            IntentSpec::new("trip")
                .required(["weather", "city"])
                .optional(["news"]),
        );
    assert_eq!(from_file, in_code);
    assert!(from_file.is_required("location", "trip"));
    // The issue's own example has one problem: nothing produces the optional `news`.
    assert_eq!(
        from_file.problems(),
        vec![Problem::Unproduced {
            intent: "trip".into(),
            field: "news".into(),
            required: false
        }]
    );
}

#[test]
fn policy_keys_are_read() {
    let text = r#"
[nodes.rag]
outputs = ["rules"]
timeout_ms = 1500
retry = { attempts = 3, backoff_ms = 20, max_backoff_ms = 400 }
breaker = "rag-api"
on_failure = "fallback"
paid = true
idempotency_key = "rag"

[nodes.news]
outputs = ["news"]
on_failure = "skip"
retry = { attempts = 2 }

[intents.waste]
required = ["rules"]
optional = ["news"]
"#;
    let contracts = Contracts::from_toml(text).unwrap();
    let rag = contracts.find_node("rag").unwrap();
    let expected = NodeSpec::new("rag")
        .outputs(["rules"])
        .timeout(Duration::from_millis(1500))
        .retry(RetrySpec {
            attempts: 3,
            backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(400),
        })
        .breaker("rag-api")
        .on_failure(OnFailure::Fallback)
        .paid()
        .idempotency_key("rag");
    assert_eq!(rag, &expected);
    let news = contracts.find_node("news").unwrap();
    assert_eq!(news.on_failure, OnFailure::Skip);
    assert_eq!(
        news.retry,
        Some(RetrySpec {
            attempts: 2,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10)
        })
    );
    assert_eq!(contracts.problems(), vec![]);
}

#[test]
fn unknown_keys_are_errors_with_their_line_not_ignored() {
    let text = "[nodes.weather]\noutputs = [\"weather\"]\n\n[intents.trip]\nrequired = [\"weather\"]\noptinal = [\"news\"]\n";
    let error = Contracts::from_toml(text).unwrap_err();
    let ContractsFileError::Schema {
        line,
        column,
        message,
    } = &error
    else {
        panic!("expected a schema error, got {error:?}");
    };
    assert_eq!((*line, *column), (6, 1));
    assert!(message.starts_with("unknown field `optinal`"), "{message}");
    assert!(!error.to_string().contains('\n'), "one line: {error}");
    for bad in [
        "[nodes.w]\noutputs = [\"w\"]\ntimeout = 5\n",
        "[nodes.w]\noutputs = [\"w\"]\nretry = { attempts = 2, jitter = true }\n",
        "[nodes.w]\noutputs = [\"w\"]\non_failure = \"retry\"\n",
        "[nodes.w]\n",
        "[plans.w]\n",
        "[nodes.w]\noutputs = \"w\"\n",
    ] {
        assert!(
            matches!(
                Contracts::from_toml(bad),
                Err(ContractsFileError::Schema { .. })
            ),
            "{bad:?} gave {:?}",
            Contracts::from_toml(bad)
        );
    }
}

#[test]
fn text_that_is_not_toml_is_a_syntax_error() {
    let error = Contracts::from_toml("[nodes.weather\noutputs = [").unwrap_err();
    assert!(
        matches!(error, ContractsFileError::Syntax { line: 1, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("not valid TOML at line 1"),
        "{error}"
    );
}
