//! `tollgate plan check FILE` end to end: the built binary on files written by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["plan", "check"])
        .arg(path)
        .output()
        .unwrap()
}

fn check_text(text: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.toml");
    std::fs::write(&path, text).unwrap();
    let out = check(&path);
    let shown = path.display().to_string();
    let strip = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&shown, "plan.toml");
    (out.status.code(), strip(&out.stdout), strip(&out.stderr))
}

#[test]
fn a_valid_plan_exits_0() {
    let (code, stdout, stderr) = check_text(
        "[nodes.weather]\noutputs = [\"weather\"]\n[nodes.location]\noutputs = [\"city\", \"country\"]\n\
         [nodes.news]\noutputs = [\"news\"]\non_failure = \"skip\"\n\
         [intents.trip]\nrequired = [\"weather\", \"city\"]\noptional = [\"news\"]\n",
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "plan.toml: ok (3 nodes, 1 intents)\n");
}

#[test]
fn s0_plan_check_exits_1_with_one_line_per_problem() {
    let (code, stdout, _) = check_text(
        r#"
[nodes.weather]
outputs = ["weather"]
[nodes.location]
outputs = ["city", "country"]
[nodes.geo]
outputs = ["city"]
[nodes.legacy]
outputs = ["fax"]
[nodes.rag]
outputs = ["rules"]
paid = true
[intents.trip]
required = ["weather", "city", "airport"]
optional = ["news"]
[intents.waste]
required = ["rules"]
"#,
    );
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "plan.toml: node \"legacy\" is used by no intent (no intent lists any of its outputs)",
            "plan.toml: node \"rag\" is a paid call without an idempotency key",
            "plan.toml: intent \"trip\" requires field \"airport\" but no node produces it",
            "plan.toml: intent \"trip\" lists optional field \"news\" but no node produces it",
            "plan.toml: intent \"trip\": field \"city\" is produced by both node \"geo\" and node \"location\" (merge conflict)",
        ]
    );
}

#[test]
fn an_unknown_key_exits_1_naming_it_and_its_line() {
    let (code, stdout, _) = check_text(
        "[nodes.weather]\noutputs = [\"weather\"]\ntimeout = 5\n[intents.t]\nrequired = [\"weather\"]\n",
    );
    assert_eq!(code, Some(1));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("plan.toml: line 3, column 1: unknown field `timeout`"),
        "{stdout}"
    );
}

#[test]
fn unreadable_input_exits_2() {
    let (code, stdout, stderr) = check_text("[nodes.weather\noutputs = [");
    assert_eq!(code, Some(2));
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("error: plan.toml: not valid TOML at line 1"),
        "{stderr}"
    );

    let missing = check(Path::new("/nonexistent/plan.toml"));
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.starts_with("error: cannot read /nonexistent/plan.toml"),
        "{stderr}"
    );
}

#[test]
fn s0_plan_check_passes_the_reference_services_shipped_plan() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tollgate-demo/src/chat/plan.toml");
    let out = check(&shipped);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.ends_with(": ok (4 nodes, 3 intents)\n"), "{stdout}");
}

#[test]
fn s0_serve_refuses_to_start_with_a_drifted_chat_plan_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("chat.toml");
    std::fs::write(
        &plan,
        "[nodes.weather]\noutputs = [\"weather\"]\n[intents.weather]\nrequired = [\"weather\", \"city\"]\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--fake-llm", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("service.db"))
        .arg("--chat-plan")
        .arg(&plan)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A deadline, not a synchronisation: the refusal is immediate; a started service is killed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the service started with a drifted plan");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    // The contract problem, and the service's nodes that the file no longer declares.
    assert!(
        stderr.contains(
            "error: chat plan: invalid plan (5 problems): intent \"weather\" requires field \
             \"city\" but no node produces it; an implementation was given for node \"location\", \
             which is not declared"
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("service.db").exists());
}
