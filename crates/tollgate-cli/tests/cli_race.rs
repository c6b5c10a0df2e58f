//! `tollgate race` end to end: the built binary against servers started in the test.

use tollgate_testkit::http_servers as support;

mod run;

use run::tollgate;
use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const S3: [&str; 9] = [
    "race", "-X", "POST", "-n", "20", "--expect", "201=1", "--expect", "409=19",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racy_server_violates_and_exits_1_with_a_json_report() {
    let server = support::racy(20).await;
    let url = server.url("/reports/{{trial_uuid}}");
    let out = tollgate(&[&S3[..], &["--trials", "10", "--json", &url]].concat()).await;

    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["requests"].as_u64(), report["trials"].as_u64()),
        (Some(20), Some(10))
    );
    // The 20 racers of a trial all check before any inserts: every trial violates.
    assert_eq!(report["violations"].as_u64(), Some(10));
    let status = report["status"].as_object().unwrap();
    assert_eq!(
        status.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        200
    );
    assert_eq!(status["201"].as_u64(), Some(200), "{status:?}");
    let created = &report["invariants"][0];
    assert_eq!(
        (created["expect"].as_str(), created["held"].as_bool()),
        (Some("201=1"), Some(false))
    );
    assert_eq!(created["observed"], serde_json::json!(vec![20; 10]));
    for key in ["p50", "p90", "p99", "max"] {
        assert!(
            report["latency_ms"][key].as_f64().unwrap() > 0.0,
            "latency {key}"
        );
    }
    assert!(report["send_spread_us"]["median"].as_u64().unwrap() > 0);
    assert!(report["send_spread_us"]["max"].is_u64());
    let trials = report["per_trial"].as_array().unwrap();
    assert_eq!(trials.len(), 10);
    assert!(trials[0]["groups"][0]["body_hash"].is_string());
    assert_eq!(
        text(&out.stderr),
        "",
        "no progress bar when stdout is not a terminal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_server_holds_and_exits_0_with_a_human_report() {
    let server = support::guarded().await;
    let url = server.url("/reports/{{trial_uuid}}");
    let out = tollgate(&[&S3[..], &["--trials", "5", &url]].concat()).await;

    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("20 requests × 5 trials, sync last-byte"),
        "{stdout}"
    );
    assert!(
        stdout.contains("status        201 ×5   409 ×95\n"),
        "{stdout}"
    );
    assert!(stdout.contains("errors        none\n"), "{stdout}");
    assert!(
        stdout.contains("409 \"report already exists\" (21 bytes, #"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  ok   201=1      held in 5/5 trials; observed 1, 1, 1, 1, 1\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("PASS: 0 of 5 trials violated (0%)\n"),
        "{stdout}"
    );
    assert_eq!(text(&out.stderr), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_exits_2_with_a_clear_message() {
    let addr = support::closed_port().await;
    let out = tollgate(&["race", "--json", &format!("http://{addr}/")]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: could not reach {addr}: Connection refused"
        )),
        "{stderr}"
    );
    assert_eq!(text(&out.stdout), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_options_exit_2_with_a_clear_error() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["--expect", "201"],
            "expectation `201` must look like CODE=COUNT",
        ),
        (&["--expect", "7xx=1"], "`7xx` is not a status code"),
        (&["-n", "0"], "invalid value '0' for '--requests <N>'"),
        (&["--trials", "many"], "must be a whole number"),
        (&["--sync", "h2"], "unknown sync mode `h2`"),
        (&["--timeout", "soon"], "`soon` is not a duration"),
        (
            &["-H", "NoColon"],
            "header `NoColon` must look like `Name: value`",
        ),
        (
            &["-d", "@/nonexistent/body.json"],
            "cannot read the request body from `/nonexistent/body.json`",
        ),
    ];
    for (args, message) in cases {
        let out = tollgate(&[&["race"], args, &["http://127.0.0.1:9/"]].concat()).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = tollgate(&["race", "ftp://example/"]).await;
    assert_eq!(
        text(&out.stderr),
        "error: invalid URL `ftp://example/`: the scheme must be http:// or https://\n"
    );
    assert_eq!(
        tollgate(&["race"]).await.status.code(),
        Some(2),
        "missing URL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_needs_insecure_for_a_self_signed_certificate() {
    let server = support::tls_ok().await;
    let url = server.https_url("/");
    let refused = tollgate(&["race", "-n", "5", &url]).await;
    assert_eq!(refused.status.code(), Some(2));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("TLS handshake failed: invalid peer certificate"),
        "{stderr}"
    );
    assert!(
        stderr.contains("(use --insecure to accept self-signed certificates)"),
        "{stderr}"
    );

    let accepted = tollgate(&["race", "-n", "5", "--insecure", "--expect", "200=5", &url]).await;
    assert_eq!(
        accepted.status.code(),
        Some(0),
        "{}",
        text(&accepted.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_is_read_from_a_file_and_templated() {
    let server = support::ok().await;
    let path = std::env::temp_dir().join(format!("tollgate-race-body-{}.json", std::process::id()));
    std::fs::write(&path, "{\"letter\": {{i}}}").unwrap();
    let data = format!("@{}", path.display());
    let args = [
        "race",
        "-X",
        "POST",
        "-n",
        "3",
        "-H",
        "Content-Type: application/json",
        "-d",
        &data,
    ];
    let out = tollgate(&[&args[..], &[&server.url("/letters")]].concat()).await;
    std::fs::remove_file(&path).unwrap();

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut bodies: Vec<_> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| text(&s.body))
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        ["{\"letter\": 0}", "{\"letter\": 1}", "{\"letter\": 2}"]
    );
    let seen = server.seen.lock().unwrap();
    assert!(
        seen.iter()
            .all(|s| s.method == "POST" && s.header("content-type") == Some("application/json"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_packet_mode_races_over_http2() {
    let (server, connections) = support::http2::serve(support::guarded_app(), false).await;
    let url = server.url("/reports/{{trial_uuid}}");
    let out = tollgate(
        &[
            &S3[..],
            &["--sync", "single-packet", "--trials", "3", "--json", &url],
        ]
        .concat(),
    )
    .await;

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sync"], "single-packet");
    assert_eq!(
        (
            report["status"]["201"].as_u64(),
            report["status"]["409"].as_u64()
        ),
        (Some(3), Some(57))
    );
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 3);
}
