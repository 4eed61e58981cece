//! The console shell on COM1: a task that polls the UART for typed lines
//! and answers `status`, `log [n]`, `balance <id>`, `peers` and `help`
//! from the consensus node's state, and `clock [step <±ms>]`.
//!
//! It only reads the node (under its lock, through
//! [`consensus::with_node`]): no command changes the node, the ledger or
//! the log. `clock step` steps this machine's wall clock off its RTC
//! ([`time::step_wall_clock`]: fault injection, what `continuum nemesis
//! skew` types here). The UART itself belongs to [`crate::console`].

use crate::consensus::{self, KernelNode};
use crate::console;
use crate::time;
use alloc::string::String;
use continuum_node::Hex;
use core::fmt::Write;

/// Longest shell command line; longer input is discarded with a message.
const MAX_LINE: usize = 128;
/// How often the shell looks for typed bytes (COM1 is polled: one byte of
/// input every few ms is far more than a person types).
const SHELL_POLL_MS: u64 = 50;

/// The console shell on COM1: `status`, `log [n]`, `balance <id>`,
/// `peers`, `help` (see [`command`]). Output is printed
/// as plain lines, between the log lines.
pub async fn run_shell() {
    let mut line = alloc::vec::Vec::with_capacity(MAX_LINE);
    let mut overflow = false;
    loop {
        crate::executor::sleep(core::time::Duration::from_millis(SHELL_POLL_MS)).await;
        while let Some(byte) = console::try_read_byte() {
            match byte {
                b'\r' | b'\n' => {
                    if overflow {
                        console::print(format_args!(
                            "> line longer than {MAX_LINE} bytes ignored\n"
                        ));
                    } else if let Ok(text) = core::str::from_utf8(&line) {
                        if !text.trim().is_empty() {
                            let output = command(text);
                            console::print(format_args!("> {}\n{output}", text.trim()));
                        }
                    }
                    line.clear();
                    overflow = false;
                }
                // Backspace / delete.
                0x08 | 0x7f => {
                    line.pop();
                }
                byte if line.len() < MAX_LINE => line.push(byte),
                _ => overflow = true,
            }
        }
    }
}

/// Runs one console shell command and returns its output.
pub fn command(line: &str) -> String {
    let mut out = String::new();
    consensus::with_node(|node| run(&mut out, line, node));
    out
}

/// `clock`: the wall clock and its step off the RTC; `clock step <±ms>`
/// steps it.
fn clock(out: &mut String, mut words: core::str::SplitWhitespace<'_>) {
    match (
        words.next(),
        words.next().map(str::parse::<i64>),
        words.next(),
    ) {
        (None, _, _) => {}
        (Some("step"), Some(Ok(delta)), None) => match time::step_wall_clock(delta) {
            Some(total) => {
                let _ = writeln!(
                    out,
                    "wall clock stepped by {delta} ms, now {total} ms off the RTC"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "refused: a step is at most {} ms and the clock stays after 1970",
                    time::MAX_WALL_STEP_MS
                );
            }
        },
        _ => {
            out.push_str("usage: clock [step <±ms>]\n");
            return;
        }
    }
    let _ = writeln!(
        out,
        "wall clock {} ms, {} ms off the RTC",
        time::wall_clock_millis(),
        time::wall_step_ms()
    );
}

fn run(out: &mut String, line: &str, node: Option<&KernelNode>) {
    let mut words = line.split_whitespace();
    match (words.next(), node) {
        (None, _) => {}
        (Some("help"), _) => out.push_str(
            "commands: status, log [n], balance <account id>, peers, clock [step <±ms>], help\n",
        ),
        (Some("clock"), _) => clock(out, words),
        (Some(_), None) => {
            out.push_str("no consensus node runs on this kernel (see the boot log)\n")
        }
        (Some("status"), Some(node)) => {
            let raft = node.raft();
            let (index, head) = node.ledger().chain_head();
            let _ = writeln!(
                out,
                "node {} {} term {} leader {} commit {} applied {} last {}\nchain head {index} {}",
                node.id(),
                consensus::role_name(raft.role()),
                raft.term(),
                raft.leader(),
                raft.commit_index(),
                node.applied(),
                raft.last_index(),
                Hex(&head)
            );
        }
        (Some("peers"), Some(node)) => {
            let raft = node.raft();
            for &peer in raft.voters().iter().filter(|&&p| p != node.id()) {
                let clock = consensus::peer_clock(peer);
                let _ = writeln!(
                    out,
                    "peer {peer}: match {} offset {} ms skew rejections {}",
                    raft.progress(peer).map_or(0, |p| p.matched),
                    clock.offset_ms,
                    clock.skew_rejections
                );
            }
        }
        (Some("balance"), Some(node)) => match words.next().map(str::parse::<u128>) {
            Some(Ok(account)) => match node.ledger().balance(account) {
                Some(balance) => {
                    let _ = writeln!(
                        out,
                        "account {account}: {balance} (local, applied index {})",
                        node.applied()
                    );
                }
                None => {
                    let _ = writeln!(out, "account {account}: no such account");
                }
            },
            _ => out.push_str("usage: balance <account id>\n"),
        },
        (Some("log"), Some(node)) => {
            let n = match words.next().map(str::parse::<u64>) {
                None => Ok(10),
                Some(Ok(n)) => Ok(n.min(100)),
                Some(Err(_)) => Err(()),
            };
            match n {
                Err(()) => out.push_str("usage: log [n]\n"),
                Ok(n) => {
                    let raft = node.raft();
                    let last = raft.last_index();
                    let first = last.saturating_sub(n).max(1);
                    for index in first..=last {
                        let _ = writeln!(
                            out,
                            "{index} term {} chain {}",
                            raft.log_term(index).unwrap_or(0),
                            raft.log_chain_hash(index)
                                .as_ref()
                                .map_or(String::from("?"), |h| alloc::format!("{}", Hex(h)))
                        );
                    }
                }
            }
        }
        (Some(other), Some(_)) => {
            let _ = writeln!(out, "unknown command `{other}`; try help");
        }
    }
}
