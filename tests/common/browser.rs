//! Headless Chromium (Debian's) for the dashboard tests: the DOM a page
//! shows after its script ran, and screenshots.

use std::path::Path;
use std::process::{Command, Stdio};

/// The number in `<b id="ID">N</b>`.
pub fn figure(html: &str, id: &str) -> Option<u64> {
    let at = html.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    html[at..].split('<').next()?.parse().ok()
}

pub fn chromium() -> &'static str {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is needed for this test: apt-get install chromium")
}

const FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1400",
];

/// The page's DOM after its script has run for a few (virtual) seconds.
pub fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=2500", "--dump-dom", url])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn screenshot(url: &str, to: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let status = Command::new(chromium())
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--virtual-time-budget=2500")
        .arg(format!("--screenshot={}", to.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::metadata(to).unwrap().len() > 10_000,
        "screenshot is empty"
    );
}
