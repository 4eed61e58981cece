//! In-kernel self-tests, run when the config says `mode = selftest`.
//!
//! They check what host tests cannot: that this image, on this (virtual)
//! machine, really allocates, keeps time, takes interrupts and schedules.
//! Each prints one line; the run ends with `selftest: N passed, M failed`
//! and QEMU exits through `isa-debug-exit` (33 = pass, 35 = fail).

use crate::arch::x86_64::debug_exit::{self, ExitCode};
use crate::arch::x86_64::interrupts;
use crate::{executor, memory, time};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use spin::Mutex;

type Outcome = Result<(), &'static str>;

static PASSED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

fn report(name: &str, outcome: Outcome) {
    match outcome {
        Ok(()) => {
            PASSED.fetch_add(1, Ordering::Relaxed);
            log::info!("selftest {name} ... ok");
        }
        Err(why) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            log::error!("selftest {name} ... FAILED: {why}");
        }
    }
}

pub fn run_and_exit() -> ! {
    report("heap_large_allocation", heap_large_allocation());
    report("heap_many_small_allocations", heap_many_small_allocations());
    report("dma_frames_contiguous", dma_frames_contiguous());
    report("wall_clock_plausible", wall_clock_plausible());
    report("hlc_strictly_increases", hlc_strictly_increases());
    executor::spawn(async { report("timer_ticks_advance", timer_ticks_advance().await) });
    executor::spawn(async { report("tasks_interleave", tasks_interleave().await) });
    executor::run_to_completion();

    let (passed, failed) = (
        PASSED.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed),
    );
    log::info!("selftest: {passed} passed, {failed} failed");
    debug_exit::exit(if failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

/// Writes through a pointer nothing maps, to prove the fault handler reports
/// the address and ends the run instead of hanging or resetting.
pub fn provoke_page_fault() -> ! {
    const UNMAPPED: u64 = 0x0000_0dea_dbee_f000;
    log::info!("selftest: writing to unmapped address {UNMAPPED:#x}");
    // SAFETY: deliberately unsound — this write must fault. The page-fault
    // handler never returns to this code (it exits QEMU or halts).
    unsafe { core::ptr::write_volatile(UNMAPPED as *mut u64, 1) };
    crate::halt_with(format_args!(
        "selftest: the write to an unmapped page did not fault"
    ))
}

fn heap_large_allocation() -> Outcome {
    const LEN: usize = 3 * 1024 * 1024;
    let (used_before, _) = memory::heap_usage();
    let mut block: Vec<u8> = vec![0; LEN];
    for (i, byte) in block.iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    let (used_during, _) = memory::heap_usage();
    if used_during < used_before + LEN {
        return Err("heap usage did not grow by the allocation");
    }
    if block.iter().enumerate().any(|(i, &b)| b != (i % 251) as u8) {
        return Err("3 MiB block did not read back what was written");
    }
    drop(block);
    if memory::heap_usage().0 != used_before {
        return Err("freeing the block did not return the memory");
    }
    Ok(())
}

fn heap_many_small_allocations() -> Outcome {
    let boxes: Vec<alloc::boxed::Box<u64>> = (0..10_000u64).map(alloc::boxed::Box::new).collect();
    if boxes.iter().enumerate().all(|(i, b)| **b == i as u64) {
        Ok(())
    } else {
        Err("a small allocation was overwritten")
    }
}

fn dma_frames_contiguous() -> Outcome {
    let phys = memory::alloc_dma_frames(4).ok_or("no frames for a 4-frame DMA run")?;
    if phys % 4096 != 0 {
        return Err("DMA run is not page aligned");
    }
    let virt = memory::phys_to_virt(phys);
    for page in 0..4 {
        let translated = memory::virt_to_phys(virt + page * 4096).ok_or("DMA page not mapped")?;
        if translated != phys + page * 4096 {
            return Err("page-table walk disagrees with the physical window");
        }
    }
    // SAFETY: the four frames were just allocated for us and are mapped in
    // the physical-memory window.
    let run = unsafe { core::slice::from_raw_parts(virt as *const u8, 4 * 4096) };
    if run.iter().any(|&b| b != 0) {
        return Err("DMA frames were not zeroed");
    }
    // A heap buffer is not in the physical window: translation must walk the tables.
    let heap_buffer = vec![0xa5u8; 4096];
    let heap_phys = memory::virt_to_phys(heap_buffer.as_ptr() as u64).ok_or("heap not mapped")?;
    // SAFETY: `heap_phys` backs `heap_buffer`, which is alive and 4 KiB long
    // (but may straddle a page, so only its first byte is checked).
    let first = unsafe { *(memory::phys_to_virt(heap_phys) as *const u8) };
    if first != 0xa5 {
        return Err("physical address of a heap buffer reads back different memory");
    }
    Ok(())
}

fn wall_clock_plausible() -> Outcome {
    // 2020-01-01T00:00:00Z; an RTC earlier than that is wrong or unset.
    if time::wall_clock_secs() >= 1_577_836_800 {
        Ok(())
    } else {
        Err("RTC wall clock is before 2020")
    }
}

fn hlc_strictly_increases() -> Outcome {
    let mut last = time::hlc_now().ok_or("HLC refused a local event")?;
    if last.millis() / 1_000 + 1 < time::wall_clock_secs() {
        return Err("HLC is behind the wall clock");
    }
    for _ in 0..100_000 {
        let next = time::hlc_now().ok_or("HLC refused a local event")?;
        if next <= last {
            return Err("HLC went backwards or repeated a timestamp");
        }
        last = next;
    }
    Ok(())
}

async fn timer_ticks_advance() -> Outcome {
    let (ns_before, irqs_before) = (time::monotonic_ns(), interrupts::timer_interrupts());
    executor::sleep(Duration::from_millis(50)).await;
    let (ns_after, irqs_after) = (time::monotonic_ns(), interrupts::timer_interrupts());
    if ns_after < ns_before + 50_000_000 {
        return Err("sleep(50 ms) returned early");
    }
    if irqs_after == irqs_before {
        return Err("no timer interrupt while sleeping");
    }
    Ok(())
}

async fn tasks_interleave() -> Outcome {
    let trace = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    for name in ['a', 'b'] {
        let (trace, done) = (trace.clone(), done.clone());
        executor::spawn(async move {
            for step in 0..3 {
                trace.lock().push((name, step));
                executor::sleep(Duration::from_millis(5)).await;
            }
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    while done.load(Ordering::SeqCst) < 2 {
        executor::sleep(Duration::from_millis(1)).await;
    }
    let trace = trace.lock();
    let expected = [('a', 0), ('b', 0), ('a', 1), ('b', 1), ('a', 2), ('b', 2)];
    if trace.as_slice() == expected {
        Ok(())
    } else {
        Err("the two tasks did not alternate")
    }
}
