//! Headless Chromium as a person's eyes: load a page from a file, wait for its script, and
//! return the resulting DOM, the console messages and a screenshot.
//!
//! Chromium is required (the Debian package `chromium`, which `scripts/test` installs): a
//! machine without it fails these tests rather than skipping them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the browser made of a page.
#[derive(Debug)]
pub(crate) struct Rendered {
    /// The DOM after the page's script ran (`--dump-dom`).
    pub(crate) dom: String,
    /// Messages the page wrote to the console (errors included), one per line.
    pub(crate) console: Vec<String>,
    /// The PNG screenshot.
    pub(crate) screenshot: PathBuf,
}

const BINARY: &str = "/usr/bin/chromium";

/// Flags for running as root in a container without a display, GPU or network chatter.
const FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

/// Renders `page` twice (DOM with console logging, then a screenshot `height` pixels tall
/// written next to the page as `<name>.png`).
pub(crate) fn render(page: &Path, height: u32) -> Rendered {
    assert!(
        Path::new(BINARY).exists(),
        "{BINARY} is missing: install the Debian package `chromium` (scripts/test does)"
    );
    let url = format!("file://{}", page.display());
    let dump = run(&["--enable-logging=stderr", "--v=0", "--dump-dom", &url]);
    let console = String::from_utf8_lossy(&dump.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    let screenshot = page.with_extension("png");
    let shot = run(&[
        &format!("--window-size=1100,{height}"),
        &format!("--screenshot={}", screenshot.display()),
        &url,
    ]);
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    Rendered {
        dom: String::from_utf8(dump.stdout).unwrap(),
        console,
        screenshot,
    }
}

/// Runs Chromium with a fresh profile directory.
fn run(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(BINARY)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether `bytes` start with the PNG signature.
pub(crate) fn is_png(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
}
