//! Running the built `tollgate` binary from an async test.

use std::process::Output;

/// Runs the binary off the runtime's worker threads, which serve the test servers.
#[allow(
    clippy::unwrap_used,
    reason = "failing to run the binary fails the test"
)]
pub(crate) async fn tollgate(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}
