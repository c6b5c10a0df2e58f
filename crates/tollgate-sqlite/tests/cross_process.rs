//! Exactly-once across processes sharing one SQLite file: a child process claims a key and is
//! SIGKILLed while working; the parent waits out its lease (real time: the processes share
//! nothing else), takes over with a higher fence, and a second process presenting the dead
//! child's token is fenced.
//!
//! The child processes are this test binary re-run with `CHILD` set, selecting the ignored
//! `child_process` test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tollgate_sqlite::SqliteStore;
use tollgate_sqlite::tollgate::once::{
    ClaimOutcome, ClaimRequest, Failure, Fence, Fingerprint, Key, OnExpired, OnUnknown, Once,
    Owner, RecordState, Settle, Store, Token,
};

const CHILD: &str = "TOLLGATE_ONCE_CHILD";
const DB: &str = "TOLLGATE_ONCE_DB";
const TOKEN: &str = "TOLLGATE_ONCE_TOKEN";
const LEASE: Duration = Duration::from_millis(500);

fn key() -> Key {
    Key::new("daily-report", "user-1/2026-11-21")
}

fn spawn_child(mode: &str, db: &std::path::Path, token: Option<Token>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, mode)
        .env(DB, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(t) = token {
        cmd.env(TOKEN, format!("{} {}", t.owner.0, t.fence.0));
    }
    cmd.spawn().unwrap()
}

/// The first line of the child's stdout that starts with `tag`, without the tag.
fn line_with(child: &mut Child, tag: &str) -> String {
    let stdout = BufReader::new(child.stdout.as_mut().unwrap());
    let line = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.starts_with(tag));
    line.unwrap_or_else(|| panic!("the child never printed {tag}"))[tag.len()..].to_string()
}

fn parse_token(text: &str) -> Token {
    let mut parts = text.split_whitespace();
    let owner = parts.next().unwrap().parse().unwrap();
    let fence = parts.next().unwrap().parse().unwrap();
    Token {
        owner: Owner(owner),
        fence: Fence(fence),
    }
}

async fn claim(store: &SqliteStore, owner: Owner) -> ClaimOutcome {
    let req = ClaimRequest {
        key: key(),
        fingerprint: Fingerprint::new("letters"),
        owner,
        lease: LEASE,
        on_expired: OnExpired::TakeOver,
        waiting_for: None,
    };
    store.claim(req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_is_taken_over_across_processes_and_its_token_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("once.db");
    let store = SqliteStore::open(&db).await.unwrap();
    let mut holder = spawn_child("hold", &db, None);
    let holder_line = tokio::task::spawn_blocking(move || {
        let line = line_with(&mut holder, "HOLDER ");
        (holder, line)
    });
    let (mut holder, line) = holder_line.await.unwrap();
    let child_token = parse_token(&line);
    let me = Owner::random();
    let busy = claim(&store, me).await;
    assert!(matches!(busy, ClaimOutcome::InProgress { holder, .. } if holder == child_token));

    holder.kill().unwrap(); // SIGKILL: no destructor, no renewal, no completion
    holder.wait().unwrap();
    let killed_at = Instant::now();
    let (token, took_over) = loop {
        match claim(&store, me).await {
            ClaimOutcome::InProgress { .. } => {
                assert!(killed_at.elapsed() < LEASE * 20, "the lease never expired");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ClaimOutcome::Acquired { token, took_over } => break (token, took_over),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(took_over, Some(child_token));
    assert_eq!(token.fence.0, child_token.fence.0 + 1);

    let late = spawn_child("complete", &db, Some(child_token));
    let answer = tokio::task::spawn_blocking(move || {
        let mut late = late;
        let settle = line_with(&mut late, "SETTLE ");
        (settle, late.wait().unwrap())
    });
    let (settle, status) = answer.await.unwrap();
    assert_eq!(settle, "Fenced", "the dead holder's completion is rejected");
    assert!(status.success());

    let until = Duration::from_secs(60);
    let done = store
        .complete(&key(), token, b"\"parent\"".to_vec(), until)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    let record = store.read(&key()).await.unwrap().unwrap();
    let completed = RecordState::Completed {
        result: b"\"parent\"".to_vec(),
    };
    assert_eq!((record.fence, record.state), (token.fence, completed));
}

/// Not a test of its own: the child side of the test above, selected by `CHILD`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of a_killed_holder_is_taken_over_across_processes_and_its_token_fenced"]
async fn child_process() {
    let (Ok(mode), Ok(db)) = (std::env::var(CHILD), std::env::var(DB)) else {
        panic!(
            "run only by a_killed_holder_is_taken_over_across_processes_and_its_token_fenced, \
             which sets {CHILD} and {DB}"
        );
    };
    let store = SqliteStore::open(db).await.unwrap();
    match mode.as_str() {
        "hold" => hold(store).await,
        "complete" => {
            let token = parse_token(&std::env::var(TOKEN).unwrap());
            let until = Duration::from_secs(60);
            let settle = store
                .complete(&key(), token, b"\"late\"".to_vec(), until)
                .await;
            println!("SETTLE {:?}", settle.unwrap());
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// Runs the work under the engine (lease renewed every 100 ms) and blocks inside it forever.
async fn hold(store: SqliteStore) {
    let once = Once::builder(store.clone())
        .lease(LEASE, Duration::from_millis(100))
        .on_unknown(OnUnknown::Rerun)
        .build();
    let work = move || async move {
        let record = store.read(&key()).await.unwrap().unwrap();
        let holder = record.holder().unwrap();
        println!("HOLDER {} {}", holder.owner.0, holder.fence.0);
        std::io::stdout().flush().unwrap();
        std::future::pending::<Result<String, Failure<String>>>().await
    };
    let _ = once.run(key(), Fingerprint::new("letters"), work).await;
}
