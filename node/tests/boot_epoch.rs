//! Issue 14 MEDIUM 6: the peer-auth boot epoch comes from the disk. Every
//! open of the store bumps and flushes the WAL generation before returning,
//! so the epoch derived from it (`continuum_net::persisted_boot_epoch`)
//! grows across reboots — crashes that lose unflushed writes included —
//! and no wall clock takes part. A peer that heard the new epoch refuses
//! datagrams recorded under an older one.

use continuum_net::peer::{AuthScheme, PeerBody};
use continuum_net::peer_auth::{PeerAuth, PeerConfig, PeerReject};
use continuum_net::{persisted_boot_epoch, PERSISTED_EPOCH_BIT};
use continuum_storage::{CrashMode, Identity, MemDisk, Store};
use ed25519_dalek::SigningKey;

const IDENTITY: Identity = Identity {
    cluster_id: 3,
    node_id: 1,
};

fn auth(me: u64, epoch: u64, keys: &[SigningKey; 2]) -> PeerAuth {
    let members = [(1, keys[0].verifying_key()), (2, keys[1].verifying_key())];
    PeerAuth::new(PeerConfig {
        cluster_id: 3,
        me,
        epoch,
        scheme: AuthScheme::HmacSha256,
        signing_key: &keys[me as usize - 1],
        members: &members,
    })
    .unwrap()
}

#[test]
fn boot_epochs_grow_across_reboots_and_old_recordings_are_refused() {
    let keys = [1u8, 2].map(|seed| SigningKey::from_bytes(&[seed; 32]));
    let (store, report) = Store::format(MemDisk::new(4096), IDENTITY).unwrap();
    let mut epoch = persisted_boot_epoch(report.wal_generation);
    let mut disk = store.into_device();
    let mut receiver = auth(2, persisted_boot_epoch(1), &keys);
    let mut recorded: Vec<(u64, Vec<u8>)> = Vec::new();
    for boot in 0..6 {
        // Crash without flushing anything after the open.
        disk.crash(CrashMode::LoseUnflushed);
        let (store, report) = Store::open(disk, IDENTITY).unwrap();
        let next = persisted_boot_epoch(report.wal_generation);
        assert!(next > epoch, "boot {boot}: epoch {next} after {epoch}");
        assert!(
            next & PERSISTED_EPOCH_BIT != 0,
            "above every wall-clock epoch"
        );
        epoch = next;
        disk = store.into_device();

        let mut sender = auth(1, epoch, &keys);
        let mut datagram = Vec::new();
        sender
            .seal(2, &PeerBody::Ping { nonce: boot }, &mut datagram)
            .unwrap();
        assert_eq!(receiver.open(&datagram).unwrap().epoch, epoch);
        // Everything recorded under an earlier boot is stale now.
        for (old_epoch, old) in &recorded {
            assert!(
                matches!(receiver.open(old), Err(PeerReject::StaleEpoch { .. })),
                "a datagram of epoch {old_epoch} was accepted in epoch {epoch}"
            );
        }
        recorded.push((epoch, datagram));
    }
}
