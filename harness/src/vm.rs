//! One QEMU VM: its command line (firmware, machine, accelerator, disks,
//! NICs, the node config over `fw_cfg`), a hard timeout, the serial
//! console captured line by line, and the exit status mapped to an outcome.

use crate::images::*;
use crate::{private, qmp};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Hard limit for one VM unless the test says otherwise. Generous because
/// two TCG guests on two busy cores can be several times slower than one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// QEMU exit statuses produced by the kernel's `isa-debug-exit` writes
/// (status = code * 2 + 1; see kernel `arch/x86_64/debug_exit.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Self-tests passed (code 0x10).
    Success,
    /// A self-test failed or the kernel panicked (code 0x11).
    Failure,
    /// A CPU exception was reported (code 0x12).
    CpuException,
    /// Any other status: QEMU itself failed, or was killed.
    Other(Option<i32>),
}

impl Exit {
    fn from_status(status: Option<i32>) -> Exit {
        match status {
            Some(33) => Exit::Success,
            Some(35) => Exit::Failure,
            Some(37) => Exit::CpuException,
            other => Exit::Other(other),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// i440FX + PIIX, QEMU's default.
    Pc,
    /// Q35 + ICH9 (PCIe), faster to boot under TCG.
    Q35,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// KVM only where a real KVM module is loaded (`kvm_intel`/`kvm_amd`);
    /// the paravirtual `kvm_pvm` on our build machines cannot run the guest.
    /// `CONTINUUM_ACCEL=kvm|tcg` overrides.
    pub fn detect() -> Accel {
        match std::env::var("CONTINUUM_ACCEL").as_deref() {
            Ok("kvm") => return Accel::Kvm,
            Ok("tcg") => return Accel::Tcg,
            _ => {}
        }
        let real_kvm = Path::new("/sys/module/kvm_intel").exists()
            || Path::new("/sys/module/kvm_amd").exists();
        if real_kvm && Path::new("/dev/kvm").exists() {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }
}

/// How QEMU caches a disk image on the host (`-drive cache=`).
///
/// What a guest flush (virtio-blk `VIRTIO_BLK_T_FLUSH`) does to the image:
/// * `Writeback` (QEMU's default): writes land in the host page cache; a
///   guest flush becomes `fdatasync` of the image, so a flushed write
///   survives host power loss. QEMU offers `VIRTIO_BLK_F_FLUSH`.
/// * `Unsafe`: like writeback, but guest flushes are ignored: fast, and
///   only process death (not host power loss) is survived. Benchmarks of
///   the guest's own overhead only.
/// * `WritethroughNoFlush`: every write is synced before it completes,
///   and the device is given `config-wce=off`, so QEMU does *not* offer
///   `VIRTIO_BLK_F_FLUSH` (QEMU 7.2 offers it even for write-through
///   drives unless told so). The kernel refuses such a disk unless
///   `unsafe_no_flush = true`: it stands for a disk without a flush.
///
/// Killing QEMU (SIGKILL) loses nothing that QEMU reported complete in
/// any mode: completed writes are already in the host kernel's page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskCache {
    Writeback,
    Unsafe,
    WritethroughNoFlush,
}

impl DiskCache {
    fn qemu_name(self) -> &'static str {
        match self {
            DiskCache::Writeback => "writeback",
            DiskCache::Unsafe => "unsafe",
            DiskCache::WritethroughNoFlush => "writethrough",
        }
    }
}

/// Which controller a disk image sits behind in the guest.
///
/// * `Virtio`: a modern virtio-blk PCI device (`virtio-blk-pci`).
/// * `Nvme`: an NVMe controller (`-device nvme`) with serial
///   [`DISK_SERIAL`], one namespace.
/// * `Ahci`: a SATA disk (`ide-hd`, serial [`DISK_SERIAL`]) on port 0 of
///   its own AHCI controller (`-device ahci`). On `q35` the chipset's
///   AHCI controller also exists (holding the boot image); the added one
///   comes first in PCI order, so `disk = ahci:0` names the test disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskKind {
    #[default]
    Virtio,
    Nvme,
    Ahci,
}

/// Every disk kind, for tests that run on each.
pub const DISK_KINDS: [DiskKind; 3] = [DiskKind::Virtio, DiskKind::Nvme, DiskKind::Ahci];

/// The serial number the harness gives NVMe and AHCI test disks.
pub const DISK_SERIAL: &str = "CONTINUUM-DISK0";

impl DiskKind {
    /// The `--disk` / cluster-file spelling.
    pub fn name(self) -> &'static str {
        match self {
            DiskKind::Virtio => "virtio",
            DiskKind::Nvme => "nvme",
            DiskKind::Ahci => "ahci",
        }
    }

    /// The node config value (`disk = ...`) that pins the harness's disk
    /// of this kind.
    pub fn config_pin(self) -> String {
        match self {
            DiskKind::Virtio => "virtio:0".into(),
            DiskKind::Nvme => format!("nvme:{DISK_SERIAL}"),
            DiskKind::Ahci => "ahci:0".into(),
        }
    }
}

impl std::fmt::Display for DiskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DiskKind {
    type Err = String;
    fn from_str(text: &str) -> Result<DiskKind, String> {
        match text {
            "virtio" => Ok(DiskKind::Virtio),
            "nvme" => Ok(DiskKind::Nvme),
            "ahci" => Ok(DiskKind::Ahci),
            other => Err(format!(
                "unknown disk kind `{other}` (expected virtio, nvme or ahci)"
            )),
        }
    }
}

/// A raw image attached as a disk of [`Disk::kind`].
#[derive(Clone, Debug)]
pub struct Disk {
    pub path: PathBuf,
    pub cache: DiskCache,
    pub kind: DiskKind,
    /// Errors injected between the guest and the image (QEMU `blkdebug`).
    pub fault: Option<crate::faults::DiskFault>,
}

/// Creates (or truncates to) a blank, sparse raw image of `mib` MiB.
pub fn blank_disk(path: &Path, mib: u64) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("cannot create the disk directory");
    }
    let file = std::fs::File::create(path)
        .unwrap_or_else(|e| panic!("cannot create disk image {}: {e}", path.display()));
    file.set_len(mib * 1024 * 1024)
        .expect("cannot size the disk image");
}

/// One VM to boot.
#[derive(Clone, Debug)]
pub struct VmConfig {
    pub name: String,
    pub firmware: Firmware,
    pub machine: Machine,
    pub accel: Accel,
    pub memory_mib: u32,
    /// Text of the node config passed through fw_cfg; `None` passes none.
    pub node_config: Option<String>,
    pub timeout: Duration,
    /// A disk (virtio-blk, NVMe or AHCI), if any.
    pub disk: Option<Disk>,
    /// Extra QEMU arguments (NICs, disks), appended in order.
    pub extra_args: Vec<String>,
    /// Where the VM's files go (config, serial log, QMP socket). Default
    /// `target/qemu-runs/<name>` in the workspace.
    pub run_dir: Option<PathBuf>,
    /// Boot these prebuilt images instead of building them (default: build
    /// once per process with [`images`]).
    pub images: Option<Images>,
    /// Append every console line to this file as it arrives (QEMU's own
    /// stderr lines prefixed `qemu: `), across restarts. Default none: the
    /// console is only kept in memory and written to `serial.log` at exit.
    pub console_log: Option<PathBuf>,
    /// Open a QMP socket (`qmp.sock` in the run directory) so the VM can be
    /// paused and resumed. Default off.
    pub qmp: bool,
    /// Boot this image from an emulated USB stick instead of the default
    /// image as a disk (see [`VmConfig::usb_stick`]).
    pub usb_stick: Option<PathBuf>,
}

impl VmConfig {
    pub fn new(name: &str) -> VmConfig {
        VmConfig {
            name: name.into(),
            firmware: Firmware::Bios,
            machine: Machine::Q35,
            accel: Accel::detect(),
            memory_mib: 256,
            node_config: None,
            timeout: DEFAULT_TIMEOUT,
            disk: None,
            extra_args: Vec::new(),
            run_dir: None,
            images: None,
            console_log: None,
            qmp: false,
            usb_stick: None,
        }
    }
    /// Keeps the VM's files in `dir` instead of `target/qemu-runs/<name>`.
    pub fn files_in(mut self, dir: &Path) -> Self {
        self.run_dir = Some(dir.to_owned());
        self
    }
    /// Boots `images` (see [`prebuilt_images`]) instead of building.
    pub fn prebuilt_images(mut self, images: &Images) -> Self {
        self.images = Some(images.clone());
        self
    }
    /// Appends the console to `path` live (see the field).
    pub fn console_log(mut self, path: &Path) -> Self {
        self.console_log = Some(path.to_owned());
        self
    }
    /// Opens a QMP socket for [`Vm::pause`] and [`Vm::resume`].
    pub fn qmp(mut self) -> Self {
        self.qmp = true;
        self
    }
    /// The QMP socket's path (whether or not QMP is enabled).
    pub fn qmp_path(&self) -> PathBuf {
        self.run_dir().join("qmp.sock")
    }
    /// Boots `image` (a BIOS or UEFI image matching [`VmConfig::firmware`])
    /// from a USB stick on an xHCI controller, as a PC boots a node's
    /// stick, instead of the default image. Opened with `snapshot=on`.
    pub fn usb_stick(mut self, image: &Path) -> Self {
        self.usb_stick = Some(image.to_owned());
        self
    }
    /// Attaches `path` (a raw image) as a virtio-blk disk.
    pub fn disk(self, path: &Path, cache: DiskCache) -> Self {
        self.disk_of(DiskKind::Virtio, path, cache)
    }
    /// Attaches `path` (a raw image) as a disk of `kind`.
    /// `DiskCache::WritethroughNoFlush` models a disk without a flush
    /// command, which only virtio-blk can be: NVMe and AHCI always offer one.
    pub fn disk_of(mut self, kind: DiskKind, path: &Path, cache: DiskCache) -> Self {
        assert!(
            kind == DiskKind::Virtio || cache != DiskCache::WritethroughNoFlush,
            "only a virtio-blk disk can be made to lack a flush command"
        );
        self.disk = Some(Disk {
            path: path.to_owned(),
            cache,
            kind,
            fault: None,
        });
        self
    }

    /// Makes the attached disk fail as `fault` says (see [`crate::faults`]).
    pub fn disk_fault(mut self, fault: Option<crate::faults::DiskFault>) -> Self {
        if let Some(disk) = &mut self.disk {
            disk.fault = fault;
        }
        self
    }
    pub fn firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self
    }
    pub fn machine(mut self, machine: Machine) -> Self {
        self.machine = machine;
        self
    }
    pub fn node_config(mut self, text: &str) -> Self {
        self.node_config = Some(text.into());
        self
    }
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Adds a virtio-net NIC on `netdev` (a QEMU `-netdev` value whose id is
    /// `id`). NICs appear on the PCI bus in the order they are added; the
    /// kernel takes the first as the replication LAN when `lan_ip` is set.
    pub fn nic(mut self, netdev: &str, id: &str, mac: Option<&str>) -> Self {
        self.extra_args
            .extend(["-netdev".into(), netdev.into(), "-device".into()]);
        let mut device = format!("virtio-net-pci,netdev={id},disable-legacy=on");
        if let Some(mac) = mac {
            device.push_str(&format!(",mac={mac}"));
        }
        self.extra_args.push(device);
        self
    }
    /// Adds the client NIC: QEMU user networking with the guest's status
    /// port (TCP 8080) and client port (UDP 7001) forwarded from 127.0.0.1.
    /// Not `restrict=on`: QEMU 7.2's slirp then drops the guest's UDP replies
    /// to forwarded ports (checked with a packet dump: the reply leaves the
    /// guest and never reaches the host). The kernel originates nothing on
    /// this NIC; it only answers.
    pub fn client_nic(self, status_port: u16, client_port: u16) -> Self {
        self.nic(
            &format!(
                "user,id=client,hostfwd=tcp:127.0.0.1:{status_port}-:8080,hostfwd=udp:127.0.0.1:{client_port}-:7001"
            ),
            "client",
            None,
        )
    }

    /// Where this VM's files (config, serial log) go.
    pub fn run_dir(&self) -> PathBuf {
        let dir = match &self.run_dir {
            Some(dir) => dir.clone(),
            None => workspace_root().join("target/qemu-runs").join(&self.name),
        };
        // It holds node.cfg (the node's secret key) and the QMP socket.
        private::create_private_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        dir
    }

    fn command(&self) -> Command {
        let images = match &self.images {
            Some(images) => images,
            None => images(),
        };
        let dir = self.run_dir();
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args([
            "-machine",
            match self.machine {
                Machine::Pc => "pc",
                Machine::Q35 => "q35",
            },
        ]);
        qemu.args(["-m", &format!("{}M", self.memory_mib)]);
        qemu.args([
            "-accel",
            match self.accel {
                Accel::Kvm => "kvm",
                Accel::Tcg => "tcg",
            },
        ]);
        if self.accel == Accel::Kvm {
            qemu.args(["-cpu", "host"]);
        }
        // BIOS boot needs a VGA device (the bootloader's second stage hangs
        // without one), so keep the default devices and just hide the window.
        qemu.args([
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
        ]);
        qemu.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        let image = match self.firmware {
            Firmware::Bios => &images.bios,
            Firmware::Uefi => {
                qemu.arg("-bios").arg(ovmf());
                &images.uefi
            }
        };
        // snapshot=on: the image is shared by concurrent tests; writes go to
        // a temporary overlay.
        match &self.usb_stick {
            Some(stick) => qemu.args([
                "-device",
                "qemu-xhci,id=xhci",
                "-drive",
                &format!(
                    "if=none,id=stick,format=raw,file={},snapshot=on",
                    stick.display()
                ),
                "-device",
                "usb-storage,bus=xhci.0,drive=stick,bootindex=0",
            ]),
            // Behind an added AHCI controller the test disk would come
            // first in the firmware's boot order: pin the image instead
            // (`ide.0` is the chipset's IDE/AHCI bus on both pc and q35).
            None if self.disk.as_ref().is_some_and(|d| d.kind == DiskKind::Ahci) => qemu.args([
                "-drive",
                &format!(
                    "if=none,id=boot,format=raw,file={},snapshot=on",
                    image.display()
                ),
                "-device",
                "ide-hd,drive=boot,bus=ide.0,bootindex=0",
            ]),
            None => qemu.args([
                "-drive",
                &format!("format=raw,file={},snapshot=on", image.display()),
            ]),
        };
        if let Some(disk) = &self.disk {
            let drive = match disk.fault {
                Some(fault) => {
                    let rules = dir.join("blkdebug.conf");
                    std::fs::write(&rules, fault.blkdebug_rules())
                        .unwrap_or_else(|e| panic!("cannot write {}: {e}", rules.display()));
                    fault.drive(&disk.path, &rules, disk.cache.qemu_name())
                }
                None => format!(
                    "if=none,id=disk0,format=raw,file={},cache={}",
                    disk.path.display(),
                    disk.cache.qemu_name()
                ),
            };
            qemu.args(["-drive", &drive]);
            match disk.kind {
                DiskKind::Virtio => qemu.args([
                    "-device",
                    if disk.cache == DiskCache::WritethroughNoFlush {
                        "virtio-blk-pci,drive=disk0,disable-legacy=on,config-wce=off"
                    } else {
                        "virtio-blk-pci,drive=disk0,disable-legacy=on"
                    },
                ]),
                DiskKind::Nvme => {
                    qemu.args(["-device", &format!("nvme,serial={DISK_SERIAL},drive=disk0")])
                }
                DiskKind::Ahci => qemu.args([
                    "-device",
                    "ahci,id=ahci0",
                    "-device",
                    &format!("ide-hd,drive=disk0,bus=ahci0.0,serial={DISK_SERIAL}"),
                ]),
            };
        }
        if let Some(text) = &self.node_config {
            let path = dir.join("node.cfg");
            private::write_private(&path, text.as_bytes()).expect("cannot write node config");
            qemu.args([
                "-fw_cfg",
                &format!("name=opt/continuum/config,file={}", path.display()),
            ]);
        }
        if self.qmp {
            let path = self.qmp_path();
            // A socket file left by a killed QEMU would make the bind fail.
            let _ = std::fs::remove_file(&path);
            qemu.args([
                "-qmp",
                &format!("unix:{},server=on,wait=off", path.display()),
            ]);
        }
        qemu.args(&self.extra_args);
        // Piped so a test can type into the serial console (`Vm::type_console`).
        qemu.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        qemu
    }

    /// Starts the VM. Panics if QEMU cannot be started.
    pub fn start(&self) -> Vm {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the VM, or says why QEMU could not be started.
    pub fn try_start(&self) -> Result<Vm, String> {
        let mut command = self.command();
        let started = Instant::now();
        let log = match &self.console_log {
            Some(path) => Some(Arc::new(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open console log {}: {e}", path.display()))?,
            ))),
            None => None,
        };
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start qemu-system-x86_64 (run qemu/setup.sh): {e}"))?;
        if let Some(log) = &log {
            let _ = writeln!(
                log.lock().unwrap(),
                "--- harness: {} started, QEMU pid {} ---",
                self.name,
                child.id()
            );
        }
        let console = Arc::new(Console::default());
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let readers = [
            spawn_reader(
                stdout,
                console.clone(),
                started,
                Stream::Serial,
                log.clone(),
            ),
            spawn_reader(stderr, console.clone(), started, Stream::QemuStderr, log),
        ];
        Ok(Vm {
            config: self.clone(),
            child,
            console,
            started,
            readers: Some(readers),
        })
    }

    /// Boots, waits for QEMU to exit (or kills it at the timeout), returns
    /// what happened.
    pub fn run(&self) -> Run {
        self.start().wait_exit()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Serial,
    QemuStderr,
}

/// Lines seen so far, with when they arrived.
#[derive(Default)]
struct Console {
    lines: Mutex<Vec<(Duration, String)>>,
    qemu_stderr: Mutex<String>,
    changed: Condvar,
}

fn spawn_reader(
    pipe: impl std::io::Read + Send + 'static,
    console: Arc<Console>,
    started: Instant,
    stream: Stream,
    log: Option<Arc<Mutex<File>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned();
            if let Some(log) = &log {
                // Best effort: a full disk must not stop the console capture.
                let prefix = if stream == Stream::QemuStderr {
                    "qemu: "
                } else {
                    ""
                };
                let _ = writeln!(log.lock().unwrap(), "{prefix}{text}");
            }
            match stream {
                Stream::Serial => console
                    .lines
                    .lock()
                    .unwrap()
                    .push((started.elapsed(), text)),
                Stream::QemuStderr => {
                    let mut err = console.qemu_stderr.lock().unwrap();
                    err.push_str(&text);
                    err.push('\n');
                }
            }
            console.changed.notify_all();
        }
    })
}

/// A running VM. Dropping it kills QEMU.
pub struct Vm {
    config: VmConfig,
    child: Child,
    console: Arc<Console>,
    started: Instant,
    readers: Option<[std::thread::JoinHandle<()>; 2]>,
}

impl Vm {
    /// Types `text` into the serial console (COM1), as a person at the
    /// console would; end it with `\n` to submit a shell line.
    pub fn type_console(&mut self, text: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the VM's console input is closed"))?;
        stdin.write_all(text.as_bytes())?;
        stdin.flush()
    }

    /// Waits until a console line contains `needle`; returns that line and
    /// when it arrived (since QEMU start). Panics, printing the console, if
    /// the VM exits or the timeout passes first.
    pub fn wait_for_line(&mut self, needle: &str) -> (Duration, String) {
        self.wait_for_nth_line(needle, 1)
    }

    /// Waits until `n` (>= 1) console lines contain `needle`; returns the
    /// `n`th and when it arrived. Panics like [`Vm::wait_for_line`].
    pub fn wait_for_nth_line(&mut self, needle: &str, n: usize) -> (Duration, String) {
        assert!(n >= 1, "wait_for_nth_line counts from 1");
        let deadline = self.started + self.config.timeout;
        let mut lines = self.console.lines.lock().unwrap();
        loop {
            if let Some((at, line)) = lines.iter().filter(|(_, l)| l.contains(needle)).nth(n - 1) {
                return (*at, line.clone());
            }
            let now = Instant::now();
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if now >= deadline || exited {
                drop(lines);
                self.fail(&format!(
                    "no {n} console line(s) containing {needle:?} ({})",
                    if exited { "QEMU exited" } else { "timed out" }
                ));
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            lines = self.console.changed.wait_timeout(lines, wait).unwrap().0;
        }
    }

    /// Like [`Vm::kill`] (SIGKILL: a crash as far as the guest is
    /// concerned), returning the console up to that moment as a [`Run`].
    pub fn crash(mut self) -> Run {
        let _ = self.child.kill();
        self.wait_exit()
    }

    /// Waits for QEMU to exit, killing it at the timeout.
    pub fn wait_exit(mut self) -> Run {
        let deadline = self.started + self.config.timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for QEMU failed: {e}"),
            }
        };
        let timed_out = status.is_none();
        if timed_out {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.join_readers();
        Run {
            name: self.config.name.clone(),
            exit: if timed_out {
                Exit::Other(None)
            } else {
                Exit::from_status(status.and_then(|s| s.code()))
            },
            timed_out,
            elapsed: self.started.elapsed(),
            lines: self.console.lines.lock().unwrap().clone(),
            qemu_stderr: self.console.qemu_stderr.lock().unwrap().clone(),
        }
    }

    /// The VM's name (from its config).
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// What this VM was started with.
    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// QEMU's exit status if it has exited (reaps it), `None` while it runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Whether QEMU is still running.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Stops the guest's CPUs (QMP `stop`): to its peers the node is
    /// frozen, as a long GC pause or a stalled host would make it. Needs
    /// [`VmConfig::qmp`].
    pub fn pause(&self) -> Result<(), qmp::QmpError> {
        qmp::execute(&self.config.qmp_path(), "stop").map(|_| ())
    }

    /// Resumes a paused guest (QMP `cont`).
    pub fn resume(&self) -> Result<(), qmp::QmpError> {
        qmp::execute(&self.config.qmp_path(), "cont").map(|_| ())
    }

    /// Whether the guest runs (`true`) or is paused (`false`), from QMP
    /// `query-status`.
    pub fn guest_running(&self) -> Result<bool, qmp::QmpError> {
        let status = qmp::execute(&self.config.qmp_path(), "query-status")?;
        status["running"]
            .as_bool()
            .ok_or_else(|| qmp::QmpError::Protocol(format!("query-status answered {status}")))
    }

    /// Kills QEMU with SIGKILL, as a crash would, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
    }

    /// The serial console so far.
    pub fn console_text(&self) -> String {
        // (kept in sync with `Run::console`)
        render(&self.console.lines.lock().unwrap())
    }

    fn join_readers(&mut self) {
        if let Some(readers) = self.readers.take() {
            for reader in readers {
                let _ = reader.join();
            }
        }
        let log = self.config.run_dir().join("serial.log");
        let _ = std::fs::write(log, self.console_text());
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
        panic!(
            "VM {}: {why}\n--- serial console ---\n{}--- QEMU stderr ---\n{}",
            self.config.name,
            self.console_text(),
            self.console.qemu_stderr.lock().unwrap()
        );
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep the serial log of VMs that were just dropped, too.
        if !std::thread::panicking() {
            self.join_readers();
        }
    }
}

fn render(lines: &[(Duration, String)]) -> String {
    lines.iter().map(|(_, l)| format!("{l}\n")).collect()
}

/// A finished VM run.
#[derive(Debug)]
pub struct Run {
    pub name: String,
    pub exit: Exit,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// Serial console lines with their arrival time since QEMU start.
    pub lines: Vec<(Duration, String)>,
    pub qemu_stderr: String,
}

impl Run {
    pub fn console(&self) -> String {
        render(&self.lines)
    }

    /// Panics with the whole console unless the run ended with `expected`.
    pub fn assert_exit(&self, expected: Exit) {
        if self.exit != expected {
            self.fail(&format!("expected exit {expected:?}, got {:?}", self.exit));
        }
    }

    /// Panics with the whole console unless some line contains `needle`.
    pub fn assert_line(&self, needle: &str) {
        if self.line_at(needle).is_none() {
            self.fail(&format!("no console line containing {needle:?}"));
        }
    }

    /// When the first line containing `needle` arrived, since QEMU start.
    pub fn line_at(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(at, _)| *at)
    }

    fn fail(&self, why: &str) -> ! {
        panic!(
            "VM {}: {why} (after {:.1?}{})\n--- serial console ---\n{}--- QEMU stderr ---\n{}",
            self.name,
            self.elapsed,
            if self.timed_out {
                ", killed at timeout"
            } else {
                ""
            },
            self.console(),
            self.qemu_stderr
        );
    }
}
