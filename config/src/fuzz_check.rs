//! Properties of the two inputs a node reads before anything else — the
//! config text and the ramdisk wrapping it — as functions that panic on
//! violation. The cargo-fuzz targets in `config/fuzz/` and the property
//! tests in `config/tests/` call the same functions, so `cargo test` covers
//! what the fuzzer checks.

use crate::ramdisk;
use crate::Config;

/// The config parser: never panics, and decides the same on the same bytes
/// (an accepted config is one value, a refusal one error).
pub fn config_parse(bytes: &[u8]) {
    let first = Config::parse(bytes);
    assert_eq!(
        first,
        Config::parse(bytes),
        "the parser is not deterministic"
    );
}

/// The ramdisk reader: never panics; what it accepts is exactly the header
/// `ramdisk::header` writes for that text, followed by the text; and the
/// text inside goes through the parser without panicking.
pub fn ramdisk(bytes: &[u8]) {
    if let Ok(text) = ramdisk::open(bytes) {
        let header = ramdisk::header(text).expect("an opened text is within the cap");
        assert_eq!(&bytes[..ramdisk::HEADER_BYTES], &header[..]);
        assert_eq!(&bytes[ramdisk::HEADER_BYTES..], text);
        config_parse(text);
    }
}
