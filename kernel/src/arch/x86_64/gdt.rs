//! GDT and TSS. Long mode ignores segmentation except for two things we
//! need: the code segment's privilege level and the TSS, whose interrupt
//! stack table gives fault handlers a known-good stack. Without IST a kernel
//! stack overflow page-faults again while pushing the fault frame, then
//! double-faults on the same broken stack and resets the machine silently.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slots (0-based indices into the TSS's interrupt stack table).
pub const DOUBLE_FAULT_IST: u16 = 0;
pub const NMI_IST: u16 = 1;
pub const PAGE_FAULT_IST: u16 = 2;

/// Size of each IST stack. Fault handlers format a message and halt; 16 KiB
/// leaves room for `core::fmt` with a margin.
const IST_STACK_BYTES: usize = 16 * 1024;

#[repr(align(16))]
struct IstStack(#[allow(dead_code, reason = "only the CPU reads it")] [u8; IST_STACK_BYTES]);

static mut IST_STACKS: [IstStack; 3] = [const { IstStack([0; IST_STACK_BYTES]) }; 3];

struct Tables {
    gdt: GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static TABLES: Once<Tables> = Once::new();

pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for (slot, index) in [DOUBLE_FAULT_IST, NMI_IST, PAGE_FAULT_IST]
            .into_iter()
            .enumerate()
        {
            // SAFETY: the stacks are only ever used by the CPU as IST stacks;
            // no Rust reference to them exists, we only take their address.
            let base = unsafe { core::ptr::addr_of!(IST_STACKS[slot]) } as u64;
            // Stacks grow down: the IST entry is the top.
            tss.interrupt_stack_table[index as usize] =
                VirtAddr::new(base + IST_STACK_BYTES as u64);
        }
        tss
    });
    let tables = TABLES.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        Tables {
            gdt,
            code,
            data,
            tss,
        }
    });
    tables.gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which
    // lives in a static and so outlives every use.
    unsafe {
        CS::set_reg(tables.code);
        DS::set_reg(tables.data);
        ES::set_reg(tables.data);
        SS::set_reg(tables.data);
        load_tss(tables.tss);
    }
}
