//! The `continuum` CLI against a real 3-node cluster in QEMU: init, up in
//! the background, wait for a leader, accounts and transfers with their
//! outcomes and error messages, a leader crash and restart, a pause, a
//! partition, exactly-once on a re-run, and down.
//!
//! The binary is built once with cargo (it belongs to another package of
//! the workspace) and run as a user would, in a temporary cluster directory.

use continuum_harness::cli::{images_dir, Cli, Down};
use serde_json::Value;

fn leader(status: &Value) -> Option<u64> {
    status["leader"].as_u64()
}

fn all_applied_same_head(status: &Value, nodes: usize) -> bool {
    let heads: Vec<&Value> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["status"]["raft"]["chain_head"])
        .collect();
    heads.len() == nodes && heads.iter().all(|h| h.is_object() && *h == heads[0])
}

#[test]
fn the_cli_runs_a_cluster_moves_money_and_survives_faults() {
    let cli = Cli::for_test("cli3");
    let images = images_dir().to_str().expect("UTF-8 path").to_owned();

    // Not initialised yet: every command says how to start.
    assert!(cli.fails(&["balance", "1"], 1).contains("cluster init"));
    let init = cli.run(&[
        "cluster",
        "init",
        "--nodes",
        "3",
        "--insecure-test-keys",
        "7",
    ]);
    assert!(init.status.success());
    assert!(String::from_utf8_lossy(&init.stderr).contains("WARNING"));
    assert!(cli
        .fails(&["cluster", "init"], 1)
        .contains("already holds a cluster"));
    assert!(cli.fails(&["balance", "1"], 1).contains("is not running"));

    let up = cli.run(&["cluster", "up", "--images", &images]);
    let _down = Down(&cli);
    assert!(up.status.success(), "cluster up failed");
    assert!(
        String::from_utf8_lossy(&up.stderr).contains("--insecure-test-keys"),
        "no warning for seeded keys"
    );
    let up = String::from_utf8(up.stdout).unwrap();
    assert!(up.contains("3 of 3 nodes started"), "{up}");
    assert!(cli
        .fails(&["cluster", "up", "--images", &images], 1)
        .contains("already up"));
    cli.ok(&["--timeout", "180", "cluster", "wait"]);

    // Accounts and transfers, with the bank's answers.
    assert!(cli
        .ok(&["account", "create", "--id", "10"])
        .contains("account 10 created"));
    assert!(cli
        .ok(&["account", "create", "--id", "11"])
        .contains("account 11 created"));
    assert!(cli
        .ok(&["account", "create", "--id", "11"])
        .contains("already exists with this owner key"));
    let funded = cli.json(&[
        "transfer", "--from", "1", "--to", "10", "--amount", "5000", "--id", "100",
    ]);
    assert_eq!(funded["outcome"], "ok", "{funded}");
    cli.ok(&[
        "transfer", "--from", "10", "--to", "11", "--amount", "2000", "--id", "101",
    ]);
    assert!(cli
        .fails(
            &["transfer", "--from", "10", "--to", "11", "--amount", "4000"],
            1
        )
        .contains("insufficient funds in account 10"));
    assert!(cli
        .fails(
            &["transfer", "--from", "10", "--to", "12", "--amount", "1"],
            1
        )
        .contains("unknown account 12"));
    assert!(cli
        .fails(
            &["transfer", "--from", "12", "--to", "10", "--amount", "1"],
            1
        )
        .contains("no key for account 12"));
    let balance = cli.json(&["balance", "11"]);
    assert_eq!(balance["balance"], 2000, "{balance}");
    assert!(cli
        .fails(&["balance", "12"], 1)
        .contains("unknown account 12"));
    let outcome = cli.json(&["outcome", "101"]);
    assert_eq!(outcome["applied"], true, "{outcome}");

    // Kill the leader: the others elect a new one and take writes.
    let status = cli.wait_status("a leader", |s| leader(s).is_some());
    let old_leader = leader(&status).unwrap().to_string();
    cli.ok(&["nemesis", "kill", &old_leader]);
    let moved = cli.json(&[
        "transfer", "--from", "10", "--to", "11", "--amount", "100", "--id", "102",
    ]);
    assert_eq!(moved["outcome"], "ok", "{moved}");
    assert_ne!(moved["position"]["node"].to_string(), old_leader);
    // Restart it on its disk: it catches up to the same receipt chain.
    cli.ok(&["nemesis", "restart", &old_leader]);
    cli.wait_status("all three on one chain head", |s| {
        all_applied_same_head(s, 3)
    });

    // A re-run of an applied transfer moves nothing.
    let again = cli.ok(&[
        "transfer", "--from", "10", "--to", "11", "--amount", "2000", "--id", "101",
    ]);
    assert!(again.contains("already applied"), "{again}");
    assert_eq!(cli.json(&["balance", "11"])["balance"], 2100);

    // Pause a follower, write, resume: it catches up.
    let status = cli.wait_status("a leader", |s| leader(s).is_some());
    let follower = (1..=3u64)
        .find(|&n| Some(n) != leader(&status))
        .unwrap()
        .to_string();
    cli.ok(&["nemesis", "pause", &follower]);
    cli.ok(&[
        "transfer", "--from", "10", "--to", "11", "--amount", "1", "--id", "103",
    ]);
    cli.ok(&["nemesis", "resume", &follower]);
    cli.wait_status("the resumed follower caught up", |s| {
        all_applied_same_head(s, 3)
    });

    // A minority partition cannot stop the majority.
    let status = cli.wait_status("a leader", |s| leader(s).is_some());
    let minority = leader(&status).unwrap();
    let majority: Vec<String> = (1..=3u64)
        .filter(|&n| n != minority)
        .map(|n| n.to_string())
        .collect();
    cli.ok(&[
        "nemesis",
        "partition",
        "--groups",
        &format!("{}/{minority}", majority.join(",")),
    ]);
    cli.ok(&[
        "--timeout",
        "120",
        "transfer",
        "--from",
        "10",
        "--to",
        "11",
        "--amount",
        "1",
        "--id",
        "104",
    ]);
    cli.ok(&["nemesis", "heal"]);
    cli.wait_status("healed cluster on one chain head", |s| {
        all_applied_same_head(s, 3)
    });
    assert_eq!(
        cli.json(&["balance", "10"])["balance"],
        5000 - 2000 - 100 - 1 - 1
    );

    assert!(cli.ok(&["cluster", "down"]).contains("cluster stopped"));
    assert!(cli.fails(&["cluster", "status"], 1).contains("stopped"));
    let _ = std::fs::remove_dir_all(&cli.dir);
}
