//! `continuum trace`, `continuum dashboard` in a real browser and
//! `continuum chaos` on a real 3-node CLI cluster.
//!
//! First the trace (no browser needed): a transfer whose client talks to a
//! follower, then `continuum trace <id> --svg target/trace.svg` must show
//! client → contact → forward → leader's proposal → appends to and acks
//! from both followers → commit and apply on all three (one receipt-chain
//! head) → reply, with the causality check passing; a malformed `/trace`
//! query is a 400.
//!
//! Then headless Chromium (driven over WebDriver by `chromedriver`) loads
//! the dashboard, the test asserts on the DOM — three nodes, one leader, a
//! transfers/s plot that moves after transfers, a timeline that shows the
//! faults a short chaos run injects, per-link `nemesis delay`/`corrupt`
//! combining and clearing on the page, a clicked transfer id opening its
//! trace — and saves a screenshot as `target/dashboard.png`.
//!
//! Chromium and chromedriver come from Debian's `chromium` and
//! `chromium-driver` (`qemu/setup.sh` installs them). If they are missing
//! and cannot be installed the browser part says so and is skipped.

use continuum_harness::images;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cli_binary() -> PathBuf {
    continuum_harness::cargo_build_bin("continuum-cli", "continuum", false)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// chromedriver and chromium, installing them with qemu/setup.sh's apt
/// step if they are missing; `None` (with the reason) if that fails.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let found = || Some((which("chromedriver")?, which("chromium")?));
    if let Some(both) = found() {
        return Ok(both);
    }
    let setup = continuum_harness::workspace_root().join("qemu/setup.sh");
    let status = Command::new(&setup)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", setup.display()))?;
    found().ok_or(format!(
        "chromium/chromedriver not installed and {} did not install them ({status})",
        setup.display()
    ))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One WebDriver HTTP call (W3C WebDriver, JSON over HTTP/1.1).
fn webdriver(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut text = Vec::new();
    match length {
        Some(n) => {
            text.resize(n, 0);
            reader.read_exact(&mut text).unwrap();
        }
        None => {
            reader.read_to_end(&mut text).unwrap();
        }
    }
    let reply: Value = serde_json::from_slice(&text).expect("WebDriver JSON");
    assert!(
        reply["value"]["error"].is_null(),
        "WebDriver {method} {path}: {reply}"
    );
    reply["value"].clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_cli(cli: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(cli)
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("continuum runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "$ continuum {}\n{text}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "continuum {} failed", args.join(" "));
    text
}

struct Down<'a>(&'a Path, &'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.0)
            .arg("--dir")
            .arg(self.1)
            .args(["cluster", "down"])
            .status();
        let _ = std::fs::remove_dir_all(self.1);
    }
}

fn cli_json(cli: &Path, dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(run_cli(cli, dir, &all).trim()).expect("JSON output")
}

/// Waits for a leader; returns it.
fn wait_leader(cli: &Path, dir: &Path, not: Option<u64>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let status = cli_json(cli, dir, &["cluster", "status"]);
        if let Some(leader) = status["leader"].as_u64().filter(|&l| Some(l) != not) {
            return leader;
        }
        assert!(Instant::now() < deadline, "no leader: {status}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn hop(trace: &Value, name: &str) -> Vec<u64> {
    let hops = trace["path"].as_array().expect("path");
    let hop = hops.iter().find(|h| h["hop"] == name).expect(name);
    hop["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

/// A transfer through a follower, traced end to end (module doc).
fn trace_a_transfer(cli: &Path, dir: &Path) {
    // The CLI's client asks node 1 first: make sure node 1 follows.
    let mut leader = wait_leader(cli, dir, None);
    if leader == 1 {
        run_cli(cli, dir, &["nemesis", "kill", "1"]);
        leader = wait_leader(cli, dir, Some(1));
        run_cli(cli, dir, &["nemesis", "restart", "1"]);
        run_cli(cli, dir, &["--timeout", "180", "cluster", "wait"]);
    }
    run_cli(cli, dir, &["account", "create", "--id", "10"]);
    let moved = cli_json(
        cli,
        dir,
        &[
            "transfer", "--from", "1", "--to", "10", "--amount", "7", "--id", "4242",
        ],
    );
    assert_eq!(moved["outcome"], "ok", "{moved}");
    let svg = continuum_harness::workspace_root().join("target/trace.svg");
    let _ = std::fs::remove_file(&svg);
    let svg_arg = svg.to_str().unwrap();
    // Followers apply once the next append or heartbeat carries the commit.
    let deadline = Instant::now() + Duration::from_secs(60);
    let trace = loop {
        let trace = cli_json(cli, dir, &["trace", "4242", "--svg", svg_arg]);
        if hop(&trace, "applied on").len() == 3 && hop(&trace, "acked by").len() == 2 {
            break trace;
        }
        assert!(Instant::now() < deadline, "trace never complete: {trace}");
        std::thread::sleep(Duration::from_secs(1));
    };
    let contact = hop(&trace, "request at contact");
    assert_eq!(contact.len(), 1, "{trace}");
    let contact = contact[0];
    let proposer = hop(&trace, "proposed by leader");
    assert_eq!(proposer.len(), 1, "{trace}");
    let proposer = proposer[0];
    let followers: Vec<u64> = (1..=3).filter(|&n| n != proposer).collect();
    assert_eq!(hop(&trace, "appended on"), followers, "{trace}");
    assert_eq!(hop(&trace, "acked by"), followers, "{trace}");
    assert_eq!(hop(&trace, "committed on"), [1, 2, 3], "{trace}");
    assert_eq!(hop(&trace, "applied on"), [1, 2, 3], "{trace}");
    assert_eq!(hop(&trace, "replied by"), [contact], "{trace}");
    if contact != proposer {
        assert_eq!(hop(&trace, "forwarded by"), [contact], "{trace}");
    }
    eprintln!("trace: contact n{contact}, leader n{proposer} (status said n{leader})");
    assert_eq!(trace["heads_agree"], true, "{trace}");
    let check = &trace["check"];
    assert_eq!(check["violations"].as_array().unwrap().len(), 0, "{trace}");
    assert!(check["message_edges"].as_u64().unwrap() >= 4, "{trace}");
    assert_eq!(check["paired"], check["message_edges"], "{trace}");
    assert_eq!(
        trace["key"]["index"], moved["position"]["index"],
        "{trace} vs {moved}"
    );
    // The text form, and the drawing.
    let text = run_cli(cli, dir, &["trace", "4242", "--svg", svg_arg]);
    assert!(text.contains(", 0 violations"), "{text}");
    let drawn = std::fs::read_to_string(&svg).expect("the SVG was written");
    assert!(drawn.starts_with("<svg ") && drawn.contains(">n3</text>"));
    assert!(drawn.matches("marker-end").count() >= 4, "{drawn}");
    eprintln!("trace: diagram {} ({} bytes)", svg.display(), drawn.len());
    // A malformed query is a 400 with a reason; an unknown transfer is no error.
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("run/state.json")).expect("state.json"),
    )
    .unwrap();
    let port = state["nodes"][0]["status_port"].as_u64().unwrap() as u16;
    let bad = continuum_harness::http_get(port, "/trace?transfer=zz").unwrap_err();
    assert!(bad.contains("400"), "{bad}");
    let none = continuum_harness::http_get(port, "/trace?transfer=99999").unwrap();
    assert!(none.contains("\"key\":null"), "{none}");
}

#[test]
fn trace_dashboard_in_a_browser_and_a_chaos_run_on_a_cli_cluster() {
    let cli = cli_binary();
    let dir = std::env::temp_dir().join(format!("ctm-dash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let images = images().bios.parent().unwrap().to_str().unwrap().to_owned();
    run_cli(
        &cli,
        &dir,
        &[
            "cluster",
            "init",
            "--nodes",
            "3",
            "--insecure-test-keys",
            "9",
        ],
    );
    run_cli(&cli, &dir, &["cluster", "up", "--images", &images]);
    let _down = Down(&cli, &dir);
    run_cli(&cli, &dir, &["--timeout", "180", "cluster", "wait"]);
    trace_a_transfer(&cli, &dir);

    let (chromedriver, chromium) = match browser() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("SKIPPED the dashboard's browser part: {why}");
            return;
        }
    };
    // The dashboard on a free port; its first line names the URL.
    let port = free_port();
    let mut dash = Command::new(&cli)
        .arg("--dir")
        .arg(&dir)
        .args(["--json", "dashboard", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dashboard starts");
    let mut first = String::new();
    BufReader::new(dash.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _dash = Killed(dash);
    let url = serde_json::from_str::<Value>(&first).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let driver_port = free_port();
    let _driver = Killed(
        Command::new(&chromedriver)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", driver_port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver never listened");
        std::thread::sleep(Duration::from_millis(200));
    }
    let session = webdriver(
        driver_port,
        "POST",
        "/session",
        Some(
            &json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1100"]
            }}}}),
        ),
    );
    let id = session["sessionId"].as_str().unwrap().to_owned();
    webdriver(
        driver_port,
        "POST",
        &format!("/session/{id}/url"),
        Some(&json!({"url": url})),
    );
    let script = |code: &str| -> Value {
        webdriver(
            driver_port,
            "POST",
            &format!("/session/{id}/execute/sync"),
            Some(&json!({"script": code, "args": []})),
        )
    };
    let wait_dom = |what: &str, code: &str| -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let value = script(code);
            if value.as_bool() != Some(false) && !value.is_null() {
                return value;
            }
            assert!(Instant::now() < deadline, "the page never showed {what}");
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    wait_dom(
        "three nodes and one leader",
        "const rows = document.querySelectorAll('#nodes tbody tr.node');
         const leaders = document.querySelectorAll('#nodes tbody tr[data-role=leader]');
         return rows.length === 3 && leaders.length === 1;",
    );
    let applied_before =
        script("return Number(document.getElementById('tps-plot').dataset.applied);");

    // Transfers move the plot.
    run_cli(&cli, &dir, &["bench", "--transfers", "30"]);
    let moved = wait_dom(
        "the transfers/s plot moving",
        &format!(
            "const p = document.getElementById('tps-plot');
             const line = document.getElementById('tps-line').getAttribute('points');
             const peak = line.split(' ').some(xy => Number(xy.split(',')[1]) < 143);
             return Number(p.dataset.applied) >= {} + 30 && peak ? p.dataset.applied : false;",
            applied_before.as_f64().unwrap_or(0.0)
        ),
    );
    eprintln!("dashboard: applied commands before {applied_before}, after {moved}");

    // A short chaos run (the CLI's socket nemesis); its faults reach the timeline.
    let chaos = run_cli(
        &cli,
        &dir,
        &[
            "chaos",
            "--duration",
            "12",
            "--seed",
            "4",
            "--faults",
            "classic",
        ],
    );
    assert!(
        chaos.contains("chaos: ") && chaos.contains("conserved"),
        "{chaos}"
    );
    wait_dom(
        "a fault or process event in the timeline",
        "return [...document.querySelectorAll('#timeline li')].some(li => li.dataset.kind === 'fault' || li.dataset.kind === 'process');",
    );
    // Per-link nemesis commands combine and clear one field at a time; the
    // page shows the fabric's plans.
    run_cli(
        &cli,
        &dir,
        &[
            "nemesis", "delay", "--ms", "30", "--jitter", "10", "--from", "1", "--to", "2",
        ],
    );
    run_cli(
        &cli,
        &dir,
        &[
            "nemesis",
            "corrupt",
            "--percent",
            "20",
            "--from",
            "1",
            "--to",
            "2",
        ],
    );
    wait_dom(
        "delay and corruption on link 1->2",
        "const t = document.getElementById('fabric').textContent;
         return t.includes('1→2') && t.includes('\"delay_ms\":30') && t.includes('\"jitter_ms\":10') && t.includes('\"corrupt\":0.2');",
    );
    run_cli(
        &cli,
        &dir,
        &["nemesis", "delay", "--ms", "0", "--from", "1", "--to", "2"],
    );
    wait_dom(
        "the delay cleared and the corruption kept",
        "const t = document.getElementById('fabric').textContent;
         return t.includes('\"delay_ms\":0') && t.includes('\"corrupt\":0.2');",
    );
    run_cli(&cli, &dir, &["nemesis", "heal"]);
    wait_dom(
        "no link faults after heal",
        "return document.getElementById('fabric').textContent.includes('no link faults');",
    );
    // A fresh transfer is listed (the chaos load pushed older ids out of
    // the nodes' recent lists); clicking it opens its trace.
    run_cli(
        &cli,
        &dir,
        &[
            "transfer", "--from", "1", "--to", "10", "--amount", "1", "--id", "4343",
        ],
    );
    wait_dom(
        "transfer 4343 listed",
        "return [...document.querySelectorAll('#trace-list a')].some(a => a.dataset.id === '4343');",
    );
    script("[...document.querySelectorAll('#trace-list a')].find(a => a.dataset.id === '4343').click(); return true;");
    wait_dom(
        "the trace of 4343 open with its diagram",
        "const t = document.getElementById('trace');
         return t.dataset.status === 'loaded' && t.dataset.transfer === '4343'
           && document.querySelector('#trace-diagram svg') !== null
           && document.getElementById('trace-check').dataset.violations === '0';",
    );
    let png = webdriver(
        driver_port,
        "GET",
        &format!("/session/{id}/screenshot"),
        None,
    );
    let png = decode_base64(png.as_str().unwrap());
    let out = continuum_harness::workspace_root().join("target/dashboard.png");
    std::fs::write(&out, &png).unwrap();
    eprintln!(
        "dashboard: screenshot {} ({} bytes)",
        out.display(),
        png.len()
    );
    assert!(png.starts_with(b"\x89PNG"));
    webdriver(driver_port, "DELETE", &format!("/session/{id}"), None);
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}
