//! Ending a QEMU run with a status the host can read: QEMU's
//! `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`)
//! exits the emulator with status `(value << 1) | 1` when a value is written
//! to its port.
//!
//! Only test runs use it, and only after [`arm`] — a production node never
//! writes to a port it did not discover.

use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::instructions::port::Port;

const PORT: u16 = 0xf4;

static ARMED: AtomicBool = AtomicBool::new(false);

/// What a test run ended with. The host harness maps QEMU's exit status back
/// to these (status = code * 2 + 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// All self-tests passed: QEMU exits with 33.
    Success = 0x10,
    /// A self-test failed or the kernel panicked: QEMU exits with 35.
    Failure = 0x11,
    /// A CPU exception (page fault, double fault, ...): QEMU exits with 37.
    CpuException = 0x12,
}

/// Allows [`exit_if_armed`] to end the run: the config asked for a test mode.
pub fn arm() {
    ARMED.store(true, Ordering::SeqCst);
}

/// Ends the QEMU run with `code` if a test mode armed the device; otherwise
/// returns and the caller halts as it would on real hardware.
pub fn exit_if_armed(code: ExitCode) {
    if ARMED.load(Ordering::SeqCst) {
        exit(code);
    }
}

/// Ends the QEMU run with `code`.
pub fn exit(code: ExitCode) -> ! {
    let mut port = Port::<u32>::new(PORT);
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit in every test configuration
    // we launch; writing it has no effect on memory. Without the device the
    // write is ignored and we halt below.
    unsafe { port.write(code as u32) };
    super::halt_forever()
}
