//! The boot console: COM1 through `uart_16550`, behind the `log` facade.
//!
//! Every line carries the monotonic time since kernel entry, so a boot log
//! doubles as a profile, and the node's HLC timestamp (UTC time of day and
//! logical counter), so lines from different nodes can be ordered. The UART is shared by tasks and interrupt handlers;
//! it is only touched with interrupts disabled, which on one CPU is enough to
//! make the lock uncontended and deadlock-free.
//!
//! This module owns the UART; the shell that reads typed lines and answers
//! them is [`crate::shell`]. It never reads node state itself.

use crate::time;
use continuum_config::LogLevel;
use core::fmt::{self, Write};
use log::{Level, LevelFilter, Metadata, Record};
use spin::Mutex;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550Tty};
use x86_64::instructions::interrupts::without_interrupts;

/// COM1's I/O port base on every PC since the IBM 5150.
const COM1: u16 = 0x3f8;

static SERIAL: Mutex<Option<Uart16550Tty<PioBackend>>> = Mutex::new(None);

struct Console;
static LOGGER: Console = Console;

pub fn init() {
    // SAFETY: COM1 is the standard PC serial port; only this module drives
    // it, and `init` runs once, before any other code writes to it.
    let uart = unsafe { Uart16550Tty::new_port(COM1, Config::default()) };
    // Without a UART (some real PCs have none) the node still runs; it just
    // cannot tell anyone what it is doing.
    *SERIAL.lock() = uart.ok();
    // `set_logger` only fails if a logger is already set, i.e. never here.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

pub fn set_level(level: LogLevel) {
    log::set_max_level(match level {
        LogLevel::Error => LevelFilter::Error,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Trace => LevelFilter::Trace,
    });
}

impl log::Log for Console {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ns = time::monotonic_ns();
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let (hlc_millis, hlc_logical) =
            time::hlc_now().map_or((0, 0), |t| (t.millis(), t.logical()));
        let day_ms = hlc_millis % 86_400_000;
        write_locked(format_args!(
            "[{:5}.{:06} {:02}:{:02}:{:02}.{:03}+{hlc_logical}] {level} {}\n",
            ns / 1_000_000_000,
            (ns / 1_000) % 1_000_000,
            day_ms / 3_600_000,
            (day_ms / 60_000) % 60,
            (day_ms / 1_000) % 60,
            day_ms % 1_000,
            record.args()
        ));
    }

    fn flush(&self) {}
}

fn write_locked(args: fmt::Arguments) {
    without_interrupts(|| {
        if let Some(uart) = SERIAL.lock().as_mut() {
            let _ = uart.write_fmt(args);
        }
    });
}

/// Writes even if the lock is held: for the panic and fault handlers, which
/// may have interrupted the very code that holds it. Interleaved output is
/// better than none.
pub fn emergency_write(args: fmt::Arguments) {
    if SERIAL.is_locked() {
        // SAFETY: only called on the way to a halt (panic or fatal exception)
        // with interrupts off. Whoever holds the lock was interrupted on this
        // one CPU and never runs again, so breaking the lock races with no one.
        unsafe { SERIAL.force_unlock() };
    }
    write_locked(args);
}

/// One byte typed on COM1, if any (the shell polls; see [`crate::shell`]).
pub fn try_read_byte() -> Option<u8> {
    without_interrupts(|| {
        SERIAL
            .lock()
            .as_mut()
            .and_then(|uart| uart.inner_mut().try_receive_byte().ok())
    })
}

/// Writes plain text (no timestamp or level), between the log lines.
pub fn print(args: fmt::Arguments) {
    write_locked(args);
}
