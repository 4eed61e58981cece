//! Physical frames, page mappings and the kernel heap.
//!
//! The bootloader maps all physical memory at a dynamic offset (at least the
//! first 4 GiB, so the local APIC and 32-bit PCI BARs are reachable) and keeps
//! its own mappings below [`crate::KERNEL_REGION_START`]. Above that address
//! the kernel maps what it owns, starting with the heap.
//!
//! Frames come from the bootloader's memory map, usable regions only, handed
//! out by a bump pointer: the kernel allocates its page tables, heap and DMA
//! rings at boot and keeps them for its lifetime, so frames are never freed.

use bootloader_api::info::MemoryRegionKind;
use bootloader_api::BootInfo;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};
use linked_list_allocator::LockedHeap;
use spin::Mutex;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB,
    Translate,
};
use x86_64::{PhysAddr, VirtAddr};

/// Usable regions we keep track of; firmware maps rarely list more than a
/// few dozen usable ranges. Extra ones are ignored (and reported).
const MAX_USABLE_REGIONS: usize = 64;
const PAGE: u64 = 4096;

static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// The global allocator: a linked-list heap, locked with interrupts off so
/// an interrupt handler that allocates cannot deadlock against the code it
/// interrupted.
struct KernelHeap(LockedHeap);

// SAFETY: every method forwards to `LockedHeap`, which is a correct
// allocator; disabling interrupts around it changes no allocation result.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        x86_64::instructions::interrupts::without_interrupts(|| unsafe { self.0.alloc(layout) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        x86_64::instructions::interrupts::without_interrupts(|| unsafe {
            self.0.dealloc(ptr, layout)
        })
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(LockedHeap::empty());

struct Frames {
    regions: [(u64, u64); MAX_USABLE_REGIONS],
    count: usize,
    /// Index of the region being consumed and the next free address in it.
    current: usize,
    next: u64,
    allocated: u64,
}

impl Frames {
    /// Takes `count` physically contiguous frames from the bump pointer,
    /// skipping to the next region when the current one has too little left.
    fn alloc_run(&mut self, count: u64) -> Option<u64> {
        while self.current < self.count {
            let (start, end) = self.regions[self.current];
            let at = self.next.max(start);
            if at + count * PAGE <= end {
                self.next = at + count * PAGE;
                self.allocated += count;
                return Some(at);
            }
            self.current += 1;
        }
        None
    }
}

// SAFETY: `allocate_frame` returns each usable frame at most once (the bump
// pointer only moves forward) and only frames the firmware marked usable.
unsafe impl FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        self.alloc_run(1)
            .map(|at| PhysFrame::containing_address(PhysAddr::new(at)))
    }
}

struct Memory {
    mapper: OffsetPageTable<'static>,
    frames: Frames,
}

static MEMORY: Mutex<Option<Memory>> = Mutex::new(None);

/// Virtual address through which physical address `phys` can be accessed.
pub fn phys_to_virt(phys: u64) -> u64 {
    let offset = PHYS_OFFSET.load(Ordering::Relaxed);
    assert!(offset != 0, "physical memory used before memory::init");
    offset + phys
}

/// Physical address behind virtual address `virt`, by walking the page
/// tables (DMA needs real physical addresses; stack buffers are not in the
/// physical-memory window, so subtracting the offset would be wrong).
pub fn virt_to_phys(virt: u64) -> Option<u64> {
    let memory = MEMORY.lock();
    let memory = memory.as_ref()?;
    memory
        .mapper
        .translate_addr(VirtAddr::new(virt))
        .map(|p| p.as_u64())
}

/// Takes over the page tables and the free memory, and maps the heap.
pub fn init(boot_info: &'static mut BootInfo, heap_mib: u32) {
    let Some(offset) = boot_info.physical_memory_offset.into_option() else {
        crate::halt_with(format_args!(
            "memory: the bootloader did not map physical memory"
        ));
    };
    PHYS_OFFSET.store(offset, Ordering::Relaxed);

    let mut frames = Frames {
        regions: [(0, 0); MAX_USABLE_REGIONS],
        count: 0,
        current: 0,
        next: 0,
        allocated: 0,
    };
    let mut usable_bytes = 0;
    let mut ignored = 0;
    for region in boot_info.memory_regions.iter() {
        if region.kind != MemoryRegionKind::Usable {
            continue;
        }
        // Frame 0 holds the real-mode IVT on BIOS machines; never hand it out.
        let start = region.start.max(PAGE).next_multiple_of(PAGE);
        let end = region.end & !(PAGE - 1);
        if end <= start {
            continue;
        }
        if frames.count == MAX_USABLE_REGIONS {
            ignored += end - start;
            continue;
        }
        frames.regions[frames.count] = (start, end);
        frames.count += 1;
        usable_bytes += end - start;
    }
    if ignored > 0 {
        log::warn!(
            "memory: {} KiB in excess regions left unused",
            ignored / 1024
        );
    }

    let (level_4_frame, _) = Cr3::read();
    let level_4 = (offset + level_4_frame.start_address().as_u64()) as *mut PageTable;
    // SAFETY: the bootloader maps all physical memory at `offset`, so this is
    // the active level-4 table; we create the only reference to it, once.
    let mut mapper = unsafe { OffsetPageTable::new(&mut *level_4, VirtAddr::new(offset)) };

    let heap_bytes = heap_mib as u64 * 1024 * 1024;
    if heap_bytes + (heap_bytes / 256) > usable_bytes {
        crate::halt_with(format_args!(
            "memory: heap of {heap_mib} MiB does not fit in {} MiB of usable RAM",
            usable_bytes / (1024 * 1024)
        ));
    }
    // The heap is one physically contiguous run, so any heap buffer can be
    // handed to a device as (physical address, length) without a bounce.
    let heap_start = crate::KERNEL_REGION_START;
    let Some(heap_phys) = frames.alloc_run(heap_bytes / PAGE) else {
        crate::halt_with(format_args!(
            "memory: no physically contiguous {heap_mib} MiB for the heap; lower heap_mib"
        ));
    };
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    for i in 0..heap_bytes / PAGE {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(heap_start + i * PAGE));
        let frame = PhysFrame::containing_address(PhysAddr::new(heap_phys + i * PAGE));
        // The page lies in the kernel region that nothing else maps, and the
        // frame belongs to the run just allocated, so this aliases nothing.
        map_page(&mut mapper, &mut frames, page, frame, flags);
    }
    // SAFETY: the range was mapped writable just above, is used by nothing
    // else, and the heap is initialised exactly once.
    unsafe {
        HEAP.0
            .lock()
            .init(heap_start as *mut u8, heap_bytes as usize)
    };

    log::info!(
        "memory: {} MiB usable in {} regions, heap {} MiB at {:#x}, {} frames used",
        usable_bytes / (1024 * 1024),
        frames.count,
        heap_mib,
        heap_start,
        frames.allocated
    );
    *MEMORY.lock() = Some(Memory { mapper, frames });
}

/// Heap bytes in use and free, for status and self-tests.
pub fn heap_usage() -> (usize, usize) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let heap = HEAP.0.lock();
        (heap.used(), heap.free())
    })
}

fn map_page(
    mapper: &mut OffsetPageTable<'static>,
    frames: &mut Frames,
    page: Page<Size4KiB>,
    frame: PhysFrame<Size4KiB>,
    flags: PageTableFlags,
) {
    // SAFETY: callers map pages of the kernel region (which nothing else
    // maps) to frames they own or to device memory; see each call site.
    match unsafe { mapper.map_to(page, frame, flags, frames) } {
        Ok(flush) => flush.flush(),
        Err(error) => crate::halt_with(format_args!(
            "memory: mapping {:#x} failed: {error:?}",
            page.start_address().as_u64()
        )),
    }
}

/// Allocates `count` physically contiguous, zeroed frames for a device to
/// DMA into (virtqueues need contiguous rings). Returns the physical address
/// of the first; the memory is reachable at [`phys_to_virt`] of it. Never
/// freed: devices live as long as the node.
pub fn alloc_dma_frames(count: u64) -> Option<u64> {
    let at = MEMORY.lock().as_mut()?.frames.alloc_run(count)?;
    // SAFETY: the frames were free (the bump pointer never hands out a frame
    // twice) and lie inside the physical-memory window.
    unsafe { core::ptr::write_bytes(phys_to_virt(at) as *mut u8, 0, (count * PAGE) as usize) };
    Some(at)
}

/// Where device registers get mapped: 1 TiB above the heap, far past any heap size.
const MMIO_WINDOW: u64 = crate::KERNEL_REGION_START + (1 << 40);
static NEXT_MMIO: AtomicU64 = AtomicU64::new(MMIO_WINDOW);

/// Maps `size` bytes of device memory at physical `phys`, uncached, and
/// returns the virtual address of `phys`. Needed because 64-bit BARs (OVMF
/// puts them at 0xe0_0000_0000) lie outside the bootloader's physical window.
pub fn map_mmio(phys: u64, size: u64) -> u64 {
    let first = phys & !(PAGE - 1);
    let pages = (phys + size.max(1))
        .next_multiple_of(PAGE)
        .saturating_sub(first)
        / PAGE;
    let virt = NEXT_MMIO.fetch_add((pages + 1) * PAGE, Ordering::Relaxed); // +1: guard page
    let flags = PageTableFlags::PRESENT
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_CACHE
        | PageTableFlags::WRITE_THROUGH
        | PageTableFlags::NO_EXECUTE;
    let mut memory = MEMORY.lock();
    let Some(memory) = memory.as_mut() else {
        crate::halt_with(format_args!("memory: MMIO mapped before memory::init"));
    };
    for i in 0..pages {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt + i * PAGE));
        let frame = PhysFrame::containing_address(PhysAddr::new(first + i * PAGE));
        // Device memory, not RAM: the frame is not ours to allocate, and the
        // virtual page is fresh from the MMIO window.
        map_page(&mut memory.mapper, &mut memory.frames, page, frame, flags);
    }
    virt + (phys - first)
}
