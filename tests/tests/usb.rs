//! Bare metal, emulated: nodes boot from USB sticks that `continuum-boot`
//! wrote with their config baked in, read that config (and refuse a
//! damaged one), and talk to each other over Intel e1000-class NICs.
//!
//! The sticks are QEMU `usb-storage` devices on an xHCI controller, booted
//! by SeaBIOS (BIOS images) or OVMF (UEFI images), as a PC boots a stick.
//! A stick-booted node keeps its log on an NVMe disk.

use continuum_config::NodeId;
use continuum_fabric::{Fabric, FabricConfig};
use continuum_harness::cluster::{ip_text, lan_ip, lan_mac, mac_text, node_key, peer_reachable};
use continuum_harness::{
    blank_disk, free_port, free_udp_port, http_get, images, workspace_root, DiskCache, DiskKind,
    Firmware, Vm, VmConfig,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CLUSTER_ID: u64 = 9009;
const WAIT: Duration = Duration::from_secs(120);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh directory for one test's cluster files.
fn scratch(name: &str) -> PathBuf {
    let dir = workspace_root()
        .join("target/usb-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("cannot create the test directory");
    dir
}

/// Node `id`'s config in a cluster of `members`, with its secret key.
fn node_config(cluster: &str, id: NodeId, members: &[NodeId]) -> String {
    let mut text = format!(
        "# node {id} of the {cluster} test cluster\nnode_id = {id}\ncluster_id = {CLUSTER_ID}\nsecret_key = {}\nlan_ip = {}/24\n",
        hex(&node_key(cluster, id).to_bytes()),
        ip_text(lan_ip(id))
    );
    for &peer in members.iter().filter(|&&m| m != id) {
        text.push_str(&format!(
            "peer = {peer} {} {}\n",
            ip_text(lan_ip(peer)),
            hex(node_key(cluster, peer).verifying_key().as_bytes())
        ));
    }
    text
}

/// Writes `dir/node-<id>.conf` for every member, as `continuum cluster
/// init` lays a cluster directory out.
fn write_cluster_dir(dir: &Path, cluster: &str, members: &[NodeId]) {
    for &id in members {
        std::fs::write(
            dir.join(format!("node-{id}.conf")),
            node_config(cluster, id, members),
        )
        .expect("cannot write a node config");
    }
}

struct Stick {
    bios: PathBuf,
    uefi: PathBuf,
}

impl Stick {
    fn image(&self, firmware: Firmware) -> &Path {
        match firmware {
            Firmware::Bios => &self.bios,
            Firmware::Uefi => &self.uefi,
        }
    }
}

/// Runs `continuum-boot` with `args` (plus `--kernel`), returning its exit
/// status and everything it printed.
fn boot_tool(args: &[&str]) -> (bool, String) {
    let images = images();
    // qemu/build.sh built the tool beside the images, in cargo's target dir.
    let tool = continuum_harness::cargo_target_dir().join("release/continuum-boot");
    assert!(
        tool.is_file(),
        "no image tool at {}: build it with qemu/build.sh",
        tool.display()
    );
    let output = Command::new(&tool)
        .args(args)
        .arg("--kernel")
        .arg(&images.kernel)
        .output()
        .expect("cannot run continuum-boot");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

/// `continuum-boot usb --cluster-dir DIR --node ID`: node `id`'s images.
fn write_stick(dir: &Path, cluster: &str, id: NodeId) -> Stick {
    let (ok, printed) = boot_tool(&[
        "usb",
        "--cluster-dir",
        dir.to_str().expect("UTF-8 path"),
        "--node",
        &id.to_string(),
    ]);
    assert!(ok, "continuum-boot failed:\n{printed}");
    let secret = hex(&node_key(cluster, id).to_bytes());
    assert!(
        !printed.contains(&secret),
        "continuum-boot printed node {id}'s secret key:\n{printed}"
    );
    let stick = Stick {
        bios: dir.join(format!("node-{id}-bios.img")),
        uefi: dir.join(format!("node-{id}-uefi.img")),
    };
    assert!(printed.contains(&format!("BIOS image: {}", stick.bios.display())));
    assert!(printed.contains(&format!("UEFI image: {}", stick.uefi.display())));
    stick
}

/// Boots node 1 of a one-member cluster from its stick and checks that it
/// read the baked-in config, and printed no key.
fn boots_from_stick(name: &str, firmware: Firmware) {
    let dir = scratch(name);
    write_cluster_dir(&dir, name, &[1]);
    let stick = write_stick(&dir, name, 1);
    let mut vm = VmConfig::new(name)
        .firmware(firmware)
        .usb_stick(stick.image(firmware))
        .timeout(WAIT)
        .start();
    let text = node_config(name, 1, &[1]);
    vm.wait_for_line(&format!(
        "config: {} bytes from the boot image (bootloader ramdisk), checksum ok",
        text.len()
    ));
    vm.wait_for_line(&format!(
        "node 1 of cluster {CLUSTER_ID}, mode node, heap {} MiB",
        continuum_config::Config::default().heap_mib
    ));
    vm.wait_for_line("ready: kernel entry -> ready");
    let console = vm.console_text();
    assert!(
        !console.contains(&hex(&node_key(name, 1).to_bytes())),
        "the console shows the secret key:\n{console}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_boots_its_bios_usb_stick_and_reads_the_baked_config() {
    boots_from_stick("usb-bios", Firmware::Bios);
}

#[test]
fn a_node_boots_its_uefi_usb_stick_and_reads_the_baked_config() {
    boots_from_stick("usb-uefi", Firmware::Uefi);
}

/// Where the baked config text sits in an image file.
fn config_offset(image: &[u8], text: &[u8]) -> usize {
    let at = image
        .windows(text.len())
        .position(|w| w == text)
        .expect("the config text is stored contiguously in the image");
    assert!(
        image[at + text.len()..]
            .windows(text.len())
            .all(|w| w != text),
        "the config text appears twice in the image"
    );
    at
}

/// Waits for `needles`, then checks the node stays halted: nothing more on
/// the console (no panic, no reboot; `-no-reboot` would end QEMU).
fn assert_halts_with(vm: &mut Vm, needles: &[&str]) {
    for needle in needles {
        vm.wait_for_line(needle);
    }
    let (_, halted) = vm.wait_for_line("ERROR halted");
    std::thread::sleep(Duration::from_secs(2));
    let console = vm.console_text();
    assert!(
        console.trim_end().ends_with(halted.trim_end()),
        "the node went on after halting:\n{console}"
    );
    assert!(!console.contains("ready:"), "it must not start:\n{console}");
}

#[test]
fn a_stick_with_a_corrupt_config_says_so_and_halts() {
    let name = "usb-corrupt";
    let dir = scratch(name);
    write_cluster_dir(&dir, name, &[1]);
    let stick = write_stick(&dir, name, 1);
    let text = node_config(name, 1, &[1]);
    let mut image = std::fs::read(&stick.bios).expect("read the image");
    let at = config_offset(&image, text.as_bytes());
    // One flipped bit in the last byte of the key, as a failing stick would.
    let key_end = at + text.find("\nlan_ip").expect("key line") - 1;
    image[key_end] ^= 0x01;
    let damaged = dir.join("damaged-bios.img");
    std::fs::write(&damaged, &image).expect("write the damaged image");

    let mut vm = VmConfig::new(name)
        .usb_stick(&damaged)
        .timeout(WAIT)
        .start();
    assert_halts_with(
        &mut vm,
        &[&format!(
            "config: the boot image's config ramdisk ({} bytes) is unusable: config text is corrupt",
            text.len() + 16
        )],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stick_with_a_well_sealed_but_invalid_config_names_the_line_and_halts() {
    let name = "usb-invalid";
    let dir = scratch(name);
    write_cluster_dir(&dir, name, &[1]);
    let stick = write_stick(&dir, name, 1);
    let text = node_config(name, 1, &[1]);
    let mut image = std::fs::read(&stick.uefi).expect("read the image");
    let at = config_offset(&image, text.as_bytes());
    // A config that parses on no node, sealed with a correct checksum: the
    // kernel's parser must catch it, not the checksum.
    let invalid = text.replace(&format!("cluster_id = {CLUSTER_ID}"), "cluster_id = 90x9");
    assert_eq!(invalid.len(), text.len());
    let header = continuum_config::ramdisk::header(invalid.as_bytes()).expect("small config");
    image[at - header.len()..at].copy_from_slice(&header);
    image[at..at + invalid.len()].copy_from_slice(invalid.as_bytes());
    let damaged = dir.join("invalid-uefi.img");
    std::fs::write(&damaged, &image).expect("write the image");

    let mut vm = VmConfig::new(name)
        .firmware(Firmware::Uefi)
        .usb_stick(&damaged)
        .timeout(WAIT)
        .start();
    assert_halts_with(
        &mut vm,
        &["config line 3: bad value, expected an unsigned 64-bit integer (in the boot image's config ramdisk); refusing to start"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_image_tool_refuses_an_invalid_config_and_writes_nothing() {
    let dir = scratch("usb-refused");
    let config = dir.join("node.conf");
    std::fs::write(&config, "node_id = 1\nheap_mib = 0\n").expect("write config");
    let out = dir.join("out");
    let (ok, printed) = boot_tool(&[
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--out",
        out.to_str().expect("UTF-8 path"),
    ]);
    assert!(!ok, "an invalid config was accepted:\n{printed}");
    assert!(
        printed.contains("config line 2: bad value, expected an integer from 1 to 1024"),
        "{printed}"
    );
    assert!(printed.contains("no image written"), "{printed}");
    assert!(!out.exists(), "images were written for an invalid config");

    // The cluster form refuses a file that configures another node.
    std::fs::write(dir.join("node-2.conf"), "node_id = 3\n").expect("write config");
    let (ok, printed) = boot_tool(&[
        "usb",
        "--cluster-dir",
        dir.to_str().expect("UTF-8 path"),
        "--node",
        "2",
    ]);
    assert!(!ok, "{printed}");
    assert!(
        printed.contains("configures node_id 3, not node 2"),
        "{printed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-netdev` + `-device` arguments for a NIC of QEMU model `model`.
fn nic_args(netdev: &str, id: &str, model: &str, mac: Option<&str>) -> Vec<String> {
    let mut device = format!("{model},netdev={id}");
    if let Some(mac) = mac {
        device.push_str(&format!(",mac={mac}"));
    }
    vec!["-netdev".into(), netdev.into(), "-device".into(), device]
}

fn status(port: u16) -> Result<serde_json::Value, String> {
    let body = http_get(port, "/status")?;
    serde_json::from_str(&body).map_err(|e| format!("bad JSON ({e}): {body}"))
}

#[test]
fn three_nodes_on_e1000_class_nics_reach_each_other() {
    let name = "usb-e1000";
    let dir = scratch(name);
    let members = [1 as NodeId, 2, 3];
    write_cluster_dir(&dir, name, &members);
    let fabric_config = FabricConfig {
        dir: dir.join("fabric"),
        nodes: 3,
        seed: 9,
    };
    let _fabric = Fabric::start(fabric_config.clone()).expect("fabric starts");

    // Node 1: virtio-net, config over fw_cfg. Node 2: 82540EM (`e1000`) for
    // both roles, booted from its BIOS stick. Node 3: 82574L (`e1000e`) for
    // both roles, booted from its UEFI stick.
    let plan: [(NodeId, &str, Option<Firmware>); 3] = [
        (1, "virtio-net-pci,disable-legacy=on", None),
        (2, "e1000", Some(Firmware::Bios)),
        (3, "e1000e", Some(Firmware::Uefi)),
    ];
    let mut vms = Vec::new();
    let mut status_ports = Vec::new();
    for (id, model, stick) in plan {
        let status_port = free_port();
        let client_port = free_udp_port();
        let mut vm = VmConfig::new(&format!("{name}-node{id}")).timeout(Duration::from_secs(300));
        match stick {
            Some(firmware) => {
                let stick = write_stick(&dir, name, id);
                vm = vm.firmware(firmware).usb_stick(stick.image(firmware));
            }
            None => vm = vm.node_config(&node_config(name, id, &members)),
        }
        vm.extra_args.extend(nic_args(
            &fabric_config.qemu_netdev(id, "lan"),
            "lan",
            model,
            Some(&mac_text(lan_mac(id))),
        ));
        vm.extra_args.extend(nic_args(
            &format!(
                "user,id=client,hostfwd=tcp:127.0.0.1:{status_port}-:8080,hostfwd=udp:127.0.0.1:{client_port}-:7001"
            ),
            "client",
            model,
            None,
        ));
        vms.push(vm.start());
        status_ports.push(status_port);
    }

    for (vm, lan_model) in vms.iter_mut().zip([
        "virtio-net",
        "Intel 82540EM (e1000)",
        "Intel 82574L (e1000e)",
    ]) {
        let (_, line) = vm.wait_for_line("net: replication LAN on");
        assert!(line.contains(lan_model), "{line}");
        let (_, line) = vm.wait_for_line("net: client network on");
        assert!(line.contains(lan_model), "{line}");
    }

    // Every node hears both others, authenticated, and answers /status on
    // its client NIC (an e1000-class one on nodes 2 and 3).
    let deadline = Instant::now() + WAIT;
    for id in members {
        let port = status_ports[id as usize - 1];
        let s = loop {
            let last = status(port);
            if let Ok(s) = &last {
                if members
                    .iter()
                    .filter(|&&p| p != id)
                    .all(|&p| peer_reachable(s, p))
                {
                    break s.clone();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "node {id}: peers not reachable; last status {last:?}\n--- console ---\n{}",
                    vms[id as usize - 1].console_text()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        assert_eq!(s["node_id"], id);
        assert_eq!(s["cluster_id"], CLUSTER_ID);
        assert_eq!(s["lan"]["ip"], format!("10.7.0.{id}/24"));
        assert_eq!(s["lan"]["mac"], mac_text(lan_mac(id)));
        assert!(s["peer_messages"]["accepted"].as_u64() > Some(0), "{s}");
        assert_eq!(s["peer_messages"]["forged"], 0, "{s}");
        assert_eq!(s["lan"]["tx_errors"], 0, "{s}");
    }
    drop(vms);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A USB-booted node keeps its log on an NVMe disk: it formats the blank
/// disk, acknowledges entries, and after kill -9 and a second boot from
/// the same stick recovers at least what it acknowledged.
fn keeps_its_log_on_nvme(name: &str, firmware: Firmware) {
    let dir = scratch(name);
    let config = format!("{}mode = wal-exercise\n", node_config(name, 1, &[1]));
    std::fs::write(dir.join("node-1.conf"), &config).expect("cannot write the node config");
    let stick = write_stick(&dir, name, 1);
    let disk = dir.join("nvme.img");
    blank_disk(&disk, 32);
    let boot = || {
        VmConfig::new(name)
            .firmware(firmware)
            .usb_stick(stick.image(firmware))
            .disk_of(DiskKind::Nvme, &disk, DiskCache::Writeback)
            .timeout(WAIT)
            .start()
    };
    let mut vm = boot();
    vm.wait_for_line("storage: using nvme ");
    vm.wait_for_line("storage: blank disk, formatted");
    let (_, acked) = vm.wait_for_nth_line("wal: acked through index", 5);
    vm.kill();
    let promised: u64 = acked
        .rsplit("index ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no index in {acked:?}"));
    let mut vm = boot();
    let (_, recovered) = vm.wait_for_line("storage: recovered last index ");
    let text = vm.console_text();
    let last: u64 = recovered
        .split("last index ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no index in {recovered:?}"));
    assert!(
        last >= promised && !text.contains("formatted"),
        "recovered {last} < acknowledged {promised}, or formatted again:\n{text}"
    );
    vm.wait_for_line("wal: verified ");
    vm.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bios_usb_booted_node_keeps_its_log_on_nvme() {
    keeps_its_log_on_nvme("usb-nvme-bios", Firmware::Bios);
}

#[test]
fn a_uefi_usb_booted_node_keeps_its_log_on_nvme() {
    keeps_its_log_on_nvme("usb-nvme-uefi", Firmware::Uefi);
}
