//! The bodies of the `config/fuzz` targets as property tests: mutated
//! configs and ramdisks never panic the parser or the reader.

use continuum_config::{fuzz_check, ramdisk};
use proptest::prelude::*;

const EXAMPLE: &str = "# node 1\nnode_id = 1\ncluster_id = 42\nheap_mib = 64\nlog_level = info\nmode = node\n\
secret_key = 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\nlan_ip = 10.7.0.1/24\n\
peer = 2 10.7.0.2 3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c\n\
operator_key = d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n\
reserve_account = 1\nsupply = 1000000000\nelection_ms = 1000\nheartbeat_ms = 100\n";

fn mutate(
    mut bytes: Vec<u8>,
    flips: &[(prop::sample::Index, u8)],
    cut: prop::sample::Index,
) -> Vec<u8> {
    for (at, value) in flips {
        let i = at.index(bytes.len());
        bytes[i] = *value;
    }
    bytes.truncate(cut.index(bytes.len() + 1));
    bytes
}

#[test]
fn the_example_parses() {
    continuum_config::Config::parse(EXAMPLE.as_bytes()).expect("the example is valid");
}

proptest! {
    #[test]
    fn mutated_configs_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        fuzz_check::config_parse(&mutate(EXAMPLE.as_bytes().to_vec(), &flips, cut));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_config_parser(
        bytes in prop::collection::vec(any::<u8>(), 0..600)
    ) {
        fuzz_check::config_parse(&bytes);
        fuzz_check::ramdisk(&bytes);
    }

    #[test]
    fn mutated_ramdisks_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let text = EXAMPLE.as_bytes();
        let mut image = ramdisk::header(text).unwrap().to_vec();
        image.extend_from_slice(text);
        fuzz_check::ramdisk(&image);
        prop_assert_eq!(ramdisk::open(&image), Ok(text));
        fuzz_check::ramdisk(&mutate(image, &flips, cut));
    }
}
