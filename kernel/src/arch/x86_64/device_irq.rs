//! Device interrupts as futures.
//!
//! A device gets one of [`SLOTS`] vectors, routed through the I/O APIC.
//! PCI INTx is level-triggered: the line stays asserted until the driver
//! acknowledges the device, which only a task can do. So the handler masks
//! the pin, records the interrupt, wakes the task and sends EOI; the task
//! acknowledges the device, does its work, and [`DeviceIrq::wait`] unmasks
//! the pin again before sleeping.

use super::{apic, ioapic};
use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use core::task::{Poll, Waker};
use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;

/// Device interrupt vectors: `FIRST_VECTOR .. FIRST_VECTOR + SLOTS`.
pub const FIRST_VECTOR: u8 = 64;
/// Distinct interrupt lines we route (NICs and disks: a handful).
pub const SLOTS: usize = 8;
/// Devices that may share one line (PCI INTx lines are shared: QEMU puts a
/// NIC and a disk on the same IRQ).
pub const SHARERS: usize = 4;

struct Sharer {
    pending: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct Slot {
    gsi: AtomicU32,
    sharers: AtomicUsize,
    sharer: [Sharer; SHARERS],
}

const UNUSED: u32 = u32::MAX;

static SLOT_TABLE: [Slot; SLOTS] = [const {
    Slot {
        gsi: AtomicU32::new(UNUSED),
        sharers: AtomicUsize::new(0),
        sharer: [const {
            Sharer {
                pending: AtomicBool::new(false),
                waker: Mutex::new(None),
            }
        }; SHARERS],
    }
}; SLOTS];
/// Serialises routing (boot-time only).
static ROUTING: Mutex<()> = Mutex::new(());

/// One device's view of its interrupt line.
pub struct DeviceIrq {
    slot: usize,
    sharer: usize,
    gsi: u32,
}

impl DeviceIrq {
    /// Routes `gsi` (or joins the devices already on it). `None` when the
    /// slots are used up or no I/O APIC owns the GSI; the caller then polls.
    pub fn route(gsi: u32) -> Option<DeviceIrq> {
        let _routing = ROUTING.lock();
        let slot = match SLOT_TABLE
            .iter()
            .position(|s| s.gsi.load(Ordering::Relaxed) == gsi)
        {
            Some(slot) => slot,
            None => {
                let slot = SLOT_TABLE
                    .iter()
                    .position(|s| s.gsi.load(Ordering::Relaxed) == UNUSED)?;
                if !ioapic::route_level(gsi, FIRST_VECTOR + slot as u8) {
                    return None;
                }
                SLOT_TABLE[slot].gsi.store(gsi, Ordering::Relaxed);
                slot
            }
        };
        let sharer = SLOT_TABLE[slot].sharers.load(Ordering::Relaxed);
        if sharer == SHARERS {
            return None;
        }
        SLOT_TABLE[slot]
            .sharers
            .store(sharer + 1, Ordering::Release);
        Some(DeviceIrq { slot, sharer, gsi })
    }

    pub fn gsi(&self) -> u32 {
        self.gsi
    }

    /// Unmasks the line and completes at the next interrupt on it (at once
    /// if one arrived since the last call). With a shared line a wake-up may
    /// be for another device: the caller just checks its device and waits again.
    pub async fn wait(&self) {
        let sharer = &SLOT_TABLE[self.slot].sharer[self.sharer];
        ioapic::set_masked(self.gsi, false);
        poll_fn(|cx| {
            without_interrupts(|| {
                if sharer.pending.swap(false, Ordering::AcqRel) {
                    Poll::Ready(())
                } else {
                    *sharer.waker.lock() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
        })
        .await
    }
}

/// Called by the IDT stub for vector `FIRST_VECTOR + slot`.
pub fn on_interrupt(slot: usize) {
    let entry = &SLOT_TABLE[slot];
    ioapic::set_masked(entry.gsi.load(Ordering::Relaxed), true);
    for sharer in &entry.sharer[..entry.sharers.load(Ordering::Acquire)] {
        sharer.pending.store(true, Ordering::Release);
        if let Some(waker) = sharer.waker.lock().take() {
            waker.wake();
        }
    }
    apic::end_of_interrupt();
}
