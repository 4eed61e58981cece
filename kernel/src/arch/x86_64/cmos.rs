//! The CMOS real-time clock: read at boot for wall-clock time, and its
//! seconds register polled afterwards so the TSC-based wall clock can be
//! held to it (`time::discipline_from_rtc`). MC146818A datasheet; register
//! layout as on every PC.

use x86_64::instructions::port::Port;

const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const STATUS_A: u8 = 0x0a;
const STATUS_B: u8 = 0x0b;
/// Status A bit 7: an update is in progress; registers may be inconsistent.
const UPDATE_IN_PROGRESS: u8 = 0x80;

fn read_register(register: u8) -> u8 {
    let mut index = Port::<u8>::new(0x70);
    let mut data = Port::<u8>::new(0x71);
    // SAFETY: 0x70/0x71 are the CMOS index and data ports. Bit 7 of the
    // index is the NMI-disable bit; we keep it clear (NMIs enabled).
    unsafe {
        index.write(register & 0x7f);
        data.read()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Reading([u8; 6]);

fn read_all() -> Reading {
    while read_register(STATUS_A) & UPDATE_IN_PROGRESS != 0 {
        core::hint::spin_loop();
    }
    Reading([SECONDS, MINUTES, HOURS, DAY, MONTH, YEAR].map(read_register))
}

/// The raw seconds register, or `None` while an update is in progress
/// (two port writes and reads; cheap enough to poll every few ms).
pub fn seconds_register() -> Option<u8> {
    if read_register(STATUS_A) & UPDATE_IN_PROGRESS != 0 {
        return None;
    }
    Some(read_register(SECONDS))
}

/// Seconds since the Unix epoch according to the RTC (assumed UTC, 21st
/// century), or `None` if the RTC holds an impossible date.
pub fn unix_seconds() -> Option<u64> {
    // Read until two consecutive readings agree: an update can start
    // between the status check and the last register read.
    let mut reading = read_all();
    loop {
        let again = read_all();
        if again == reading {
            break;
        }
        reading = again;
    }
    let status_b = read_register(STATUS_B);
    let binary = status_b & 0x04 != 0;
    let hour_24 = status_b & 0x02 != 0;
    let decode = |v: u8| {
        if binary {
            v
        } else {
            (v & 0x0f) + (v >> 4) * 10
        }
    };
    let [s, m, h, day, month, year] = reading.0;
    let pm = h & 0x80 != 0;
    let mut hour = decode(h & 0x7f);
    if !hour_24 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    civil_to_unix(
        2000 + decode(year) as i64,
        decode(month) as i64,
        decode(day) as i64,
        hour as i64,
        decode(m) as i64,
        decode(s) as i64,
    )
}

/// Days-from-civil (Howard Hinnant's algorithm), then seconds.
fn civil_to_unix(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> Option<u64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3_600 + mm * 60 + ss).ok()
}
