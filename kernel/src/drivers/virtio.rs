//! The `virtio-drivers` HAL: DMA memory, MMIO mapping and buffer sharing
//! for virtio devices on PCI (modern virtio 1.x only).
//!
//! Devices see physical addresses. Virtqueue rings come from contiguous DMA
//! frames. Buffers the drivers hand over are translated through the page
//! tables; the heap is one physically contiguous run (see `memory`), so heap
//! buffers are shared in place. A buffer whose pages are not contiguous
//! (a small request header on the boot stack that straddles a page) is
//! copied through a bounce slot.

use crate::memory;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

const PAGE: usize = 4096;
/// Bounce slots (one page each) for non-contiguous buffers; they are rare
/// and short-lived (a request header in flight), so 64 is plenty.
const BOUNCE_SLOTS: usize = 64;

static BOUNCE_BASE: Once<u64> = Once::new();
static BOUNCE_USED: AtomicU64 = AtomicU64::new(0);

pub struct KernelHal;

fn bounce_base() -> u64 {
    *BOUNCE_BASE.call_once(|| {
        memory::alloc_dma_frames(BOUNCE_SLOTS as u64).unwrap_or_else(|| {
            crate::halt_with(format_args!("virtio: no memory for bounce buffers"))
        })
    })
}

/// Physical address of `len` bytes at `virt` if they are contiguous.
fn contiguous_phys(virt: u64, len: usize) -> Option<u64> {
    let start = memory::virt_to_phys(virt)?;
    let mut page = (virt & !(PAGE as u64 - 1)) + PAGE as u64;
    while page < virt + len as u64 {
        if memory::virt_to_phys(page)? != start + (page - virt) {
            return None;
        }
        page += PAGE as u64;
    }
    Some(start)
}

// SAFETY: `dma_alloc` returns zeroed, contiguous, exclusively owned frames;
// `share` returns a physical address that covers the whole buffer (in place
// or through a bounce slot that `unshare` copies back and releases).
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match memory::alloc_dma_frames(pages as u64) {
            Some(phys) => (
                phys,
                NonNull::new(memory::phys_to_virt(phys) as *mut u8).unwrap(),
            ),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // Devices live as long as the node; their rings are never returned.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        NonNull::new(memory::map_mmio(paddr, size as u64) as *mut u8).unwrap()
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let virt = buffer.as_ptr() as *mut u8 as u64;
        let len = buffer.len();
        if let Some(phys) = contiguous_phys(virt, len) {
            return phys;
        }
        assert!(
            len <= PAGE,
            "virtio: a {len}-byte DMA buffer is not physically contiguous"
        );
        let slot = loop {
            let used = BOUNCE_USED.load(Ordering::Acquire);
            let free = (!used).trailing_zeros() as usize;
            assert!(free < BOUNCE_SLOTS, "virtio: all bounce slots in use");
            if BOUNCE_USED
                .compare_exchange(used, used | 1 << free, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break free;
            }
        };
        let phys = bounce_base() + (slot * PAGE) as u64;
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the slot is ours until `unshare`, the source buffer is
            // valid for `len` bytes (caller's contract), and len <= PAGE.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    virt as *const u8,
                    memory::phys_to_virt(phys) as *mut u8,
                    len,
                )
            };
        }
        phys
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let base = bounce_base();
        if !(base..base + (BOUNCE_SLOTS * PAGE) as u64).contains(&paddr) {
            return; // shared in place
        }
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: the slot holds what the device wrote; the buffer is
            // valid for writes of its length (caller's contract).
            unsafe {
                core::ptr::copy_nonoverlapping(
                    memory::phys_to_virt(paddr) as *const u8,
                    buffer.as_ptr() as *mut u8,
                    buffer.len(),
                )
            };
        }
        let slot = ((paddr - base) as usize) / PAGE;
        BOUNCE_USED.fetch_and(!(1 << slot), Ordering::AcqRel);
    }
}
