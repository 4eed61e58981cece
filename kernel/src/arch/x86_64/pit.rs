//! The 8254 programmable interval timer, used once: as the reference clock
//! that the TSC is calibrated against when CPUID does not state its rate.
//! Channel 2 is used because its gate and output are readable through port
//! 0x61, so no interrupt is needed (8254 datasheet, mode 0).

use x86_64::instructions::port::Port;

/// The PIT's input clock, in Hz (1.193182 MHz, a third of the NTSC colour
/// burst frequency — fixed on every PC).
pub const PIT_HZ: u64 = 1_193_182;

/// Busy-waits until `ticks` PIT ticks (at most 65535, ~54.9 ms) have passed,
/// calling `sample` just before starting and right after finishing; returns
/// both samples.
pub fn measure<T>(ticks: u16, mut sample: impl FnMut() -> T) -> (T, T) {
    let mut gate = Port::<u8>::new(0x61);
    let mut command = Port::<u8>::new(0x43);
    let mut channel2 = Port::<u8>::new(0x42);
    // SAFETY: these are the 8254's and the PC speaker control's fixed ports;
    // the sequence only reprograms channel 2, which nothing else uses, and
    // keeps the speaker output off (bit 1 of port 0x61 cleared).
    unsafe {
        let speaker = gate.read() & !0x03;
        gate.write(speaker); // gate low: channel 2 stops
        command.write(0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        channel2.write(ticks as u8);
        channel2.write((ticks >> 8) as u8);
        let before = sample();
        gate.write(speaker | 0x01); // gate high: counting starts
                                    // Output (bit 5) goes high when the count reaches zero.
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        let after = sample();
        gate.write(speaker);
        (before, after)
    }
}
