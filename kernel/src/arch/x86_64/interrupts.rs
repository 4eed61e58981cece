//! The IDT: CPU exceptions that report and halt, and the local APIC timer
//! that wakes the executor.
//!
//! Vector map:
//! * 0..32   CPU exceptions (Intel SDM Vol. 3A §6.15)
//! * 32..48  the legacy 8259 PICs, remapped here and fully masked — remapped
//!   because their power-on vectors 8..15 collide with exceptions, so a
//!   spurious IRQ 7 would look like a double fault
//! * 48      local APIC timer
//! * 64..72  device interrupts through the I/O APIC (`device_irq`)
//! * 255     local APIC spurious vector

use super::{apic, debug_exit};
use super::{device_irq, gdt};
use crate::console::emergency_write;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;
use x86_64::instructions::port::Port;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

const PIC_BASE: u8 = 32;
pub const TIMER_VECTOR: u8 = 48;
pub const SPURIOUS_VECTOR: u8 = 0xff;

static IDT: Once<InterruptDescriptorTable> = Once::new();
static TIMER_INTERRUPTS: AtomicU64 = AtomicU64::new(0);

/// How many times the APIC timer has fired since boot.
pub fn timer_interrupts() -> u64 {
    TIMER_INTERRUPTS.load(Ordering::Relaxed)
}

pub fn init_idt() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        idt.divide_error.set_handler_fn(divide_error);
        idt.debug.set_handler_fn(debug);
        idt.breakpoint.set_handler_fn(breakpoint);
        idt.overflow.set_handler_fn(overflow);
        idt.bound_range_exceeded.set_handler_fn(bound_range);
        idt.invalid_opcode.set_handler_fn(invalid_opcode);
        idt.device_not_available
            .set_handler_fn(device_not_available);
        idt.invalid_tss.set_handler_fn(invalid_tss);
        idt.segment_not_present.set_handler_fn(segment_not_present);
        idt.stack_segment_fault.set_handler_fn(stack_segment_fault);
        idt.general_protection_fault
            .set_handler_fn(general_protection);
        idt.x87_floating_point.set_handler_fn(x87_floating_point);
        idt.alignment_check.set_handler_fn(alignment_check);
        idt.simd_floating_point.set_handler_fn(simd_floating_point);
        // SAFETY: the IST indices name stacks that `gdt::init` installed in
        // the TSS before the IDT is loaded; no other handler uses them.
        unsafe {
            idt.double_fault
                .set_handler_fn(double_fault)
                .set_stack_index(gdt::DOUBLE_FAULT_IST);
            idt.non_maskable_interrupt
                .set_handler_fn(nmi)
                .set_stack_index(gdt::NMI_IST);
            idt.page_fault
                .set_handler_fn(page_fault)
                .set_stack_index(gdt::PAGE_FAULT_IST);
        }
        for irq in 0..16u8 {
            idt[PIC_BASE + irq].set_handler_fn(pic_spurious);
        }
        idt[TIMER_VECTOR].set_handler_fn(timer);
        let device_handlers: [extern "x86-interrupt" fn(InterruptStackFrame); device_irq::SLOTS] = [
            device_0, device_1, device_2, device_3, device_4, device_5, device_6, device_7,
        ];
        for (slot, handler) in device_handlers.into_iter().enumerate() {
            idt[device_irq::FIRST_VECTOR + slot as u8].set_handler_fn(handler);
        }
        idt[SPURIOUS_VECTOR].set_handler_fn(apic_spurious);
        idt
    });
    idt.load();
}

/// Remaps and masks the legacy PICs, then starts the local APIC. Interrupts
/// are enabled on return.
pub fn init_timer() {
    disable_legacy_pic();
    apic::init(SPURIOUS_VECTOR, TIMER_VECTOR);
    x86_64::instructions::interrupts::enable();
}

/// 8259A initialisation (ICW1..ICW4), then mask every line. Even masked, the
/// PIC can raise a spurious IRQ 7/15, which now lands on a harmless vector.
fn disable_legacy_pic() {
    let mut master_cmd = Port::<u8>::new(0x20);
    let mut master_data = Port::<u8>::new(0x21);
    let mut slave_cmd = Port::<u8>::new(0xa0);
    let mut slave_data = Port::<u8>::new(0xa1);
    // SAFETY: the PIC ports exist on every PC-compatible machine, including
    // QEMU's `pc` and `q35`; this sequence only changes interrupt routing,
    // never memory, and runs with interrupts disabled.
    unsafe {
        master_cmd.write(0x11); // ICW1: init, cascade, expect ICW4
        slave_cmd.write(0x11);
        master_data.write(PIC_BASE); // ICW2: vector offsets
        slave_data.write(PIC_BASE + 8);
        master_data.write(4); // ICW3: slave on IRQ2
        slave_data.write(2);
        master_data.write(0x01); // ICW4: 8086 mode
        slave_data.write(0x01);
        master_data.write(0xff); // mask all
        slave_data.write(0xff);
    }
}

extern "x86-interrupt" fn timer(_frame: InterruptStackFrame) {
    TIMER_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    // The executor looks at its timers when `hlt` returns; nothing else to do.
    apic::end_of_interrupt();
}

macro_rules! device_handlers {
    ($($name:ident = $slot:literal;)*) => {$(
        extern "x86-interrupt" fn $name(_frame: InterruptStackFrame) {
            device_irq::on_interrupt($slot);
        }
    )*};
}

device_handlers! {
    device_0 = 0; device_1 = 1; device_2 = 2; device_3 = 3;
    device_4 = 4; device_5 = 5; device_6 = 6; device_7 = 7;
}

extern "x86-interrupt" fn apic_spurious(_frame: InterruptStackFrame) {
    // Intel SDM Vol. 3A §11.9: no EOI for the spurious vector.
}

extern "x86-interrupt" fn pic_spurious(_frame: InterruptStackFrame) {
    // All PIC lines are masked; only spurious IRQs get here, and a spurious
    // IRQ must not be acknowledged (8259A datasheet, "spurious interrupt").
}

/// Reports a CPU exception and stops: in a test run by exiting QEMU, on a
/// real node by halting (a node in an unknown state must not vote).
fn fatal(name: &str, frame: &InterruptStackFrame, error_code: Option<u64>) -> ! {
    match error_code {
        Some(code) => emergency_write(format_args!(
            "\nCPU EXCEPTION: {name} (error code {code:#x}) at rip {:#x}, rsp {:#x}\n",
            frame.instruction_pointer.as_u64(),
            frame.stack_pointer.as_u64()
        )),
        None => emergency_write(format_args!(
            "\nCPU EXCEPTION: {name} at rip {:#x}, rsp {:#x}\n",
            frame.instruction_pointer.as_u64(),
            frame.stack_pointer.as_u64()
        )),
    }
    debug_exit::exit_if_armed(debug_exit::ExitCode::CpuException);
    super::halt_forever()
}

extern "x86-interrupt" fn page_fault(frame: InterruptStackFrame, code: PageFaultErrorCode) {
    emergency_write(format_args!(
        "\nPAGE FAULT: address {:#x}, {:?}\n",
        Cr2::read_raw(),
        code
    ));
    fatal("page fault", &frame, Some(code.bits()))
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    fatal("double fault", &frame, Some(code))
}

extern "x86-interrupt" fn general_protection(frame: InterruptStackFrame, code: u64) {
    fatal("general protection fault", &frame, Some(code))
}

extern "x86-interrupt" fn nmi(frame: InterruptStackFrame) {
    fatal("non-maskable interrupt", &frame, None)
}

macro_rules! fatal_handlers {
    ($($name:ident: $text:literal;)*) => {$(
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame) {
            fatal($text, &frame, None)
        }
    )*};
}

macro_rules! fatal_handlers_with_code {
    ($($name:ident: $text:literal;)*) => {$(
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame, code: u64) {
            fatal($text, &frame, Some(code))
        }
    )*};
}

fatal_handlers! {
    divide_error: "divide error";
    debug: "debug trap";
    breakpoint: "breakpoint";
    overflow: "overflow";
    bound_range: "bound range exceeded";
    invalid_opcode: "invalid opcode";
    device_not_available: "device not available";
    x87_floating_point: "x87 floating point";
    simd_floating_point: "SIMD floating point";
}

fatal_handlers_with_code! {
    invalid_tss: "invalid TSS";
    segment_not_present: "segment not present";
    stack_segment_fault: "stack segment fault";
    alignment_check: "alignment check";
}
