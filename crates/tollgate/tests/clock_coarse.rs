//! `Clock::Coarse` reads the kernel's coarse clock through libc (rustix's `use-libc`), so a
//! program that uses it runs under valgrind: rustix's own vDSO lookup reads the process's
//! auxiliary vector in a way valgrind does not support, and the program dies with a
//! segmentation fault at its first coarse read (rustix issue 1559).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::process::Command;

use tollgate::clock::Clock;

#[test]
#[ignore = "run under valgrind by a_program_reading_the_coarse_clock_runs_under_valgrind"]
fn child_reads_the_coarse_clock() {
    let clock = Clock::Coarse;
    let mut last = clock.now();
    for _ in 0..1_000 {
        let now = clock.now();
        assert!(now >= last, "the coarse clock went back");
        last = now;
    }
    println!("COARSE CLOCK READ");
}

#[test]
fn a_program_reading_the_coarse_clock_runs_under_valgrind() {
    let out = Command::new("valgrind")
        .args(["--tool=none", "-q"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "child_reads_the_coarse_clock",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("valgrind runs (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "under valgrind: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("COARSE CLOCK READ"), "stdout:\n{stdout}");
    assert!(stdout.contains("1 passed"), "stdout:\n{stdout}");
}
