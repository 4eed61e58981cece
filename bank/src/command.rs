//! Commands and their one canonical binary encoding, plus the client-side
//! helpers that build and sign them.
//!
//! Every field is fixed-width little-endian, so each command kind has exactly
//! one body length and every byte string of that length is either exactly one
//! command or a [`DecodeError`] (reserved flag bits). A signed command on the
//! wire is `kind (1) ‖ body ‖ signature (64)`; see the README tables.
//!
//! ## Who signs what
//! * [`Transfer`] is signed by the owner key of the *debited* account (`from`).
//! * [`CreateAccount`] is signed by the cluster's **operator** key, not by the
//!   new owner. Every account costs replicated memory on every node for ever
//!   (bounded by `Limits::max_accounts`), so creating one is an admission
//!   decision that needs an authority; if any key could self-sign its own
//!   account, anyone could fill the account table. The owner key is
//!   validated when the account is created (canonical encoding, not of small
//!   order, torsion-free — `verify::OwnerKey`); the operator does not prove
//!   the owner holds the secret key, exactly like sending money to an address.
//!
//! ## Signed message (domain separation)
//! `SIGNING_DOMAIN (16) ‖ cluster_id (16, LE) ‖ kind (1) ‖ body`. The domain
//! tag keeps these signatures from being valid for any other protocol using
//! the same keys; the cluster id keeps a command signed for one cluster from
//! replaying on another; the kind byte keeps the bodies of different kinds
//! apart even if their lengths ever coincided.

use crate::codec::{DecodeError, Put, Reader};
use alloc::vec::Vec;
use ed25519_dalek::{Signer, SigningKey};

/// Domain-separation tag that starts every signed message.
/// Version 2: commands carry `expires_at` (signed).
pub const SIGNING_DOMAIN: &[u8; 16] = b"continuum-bank/2";
/// Length of an Ed25519 signature (R ‖ S).
pub const SIGNATURE_LEN: usize = 64;
/// Body length of a [`CreateAccount`]: id 16 + owner 32 + flags 2 + expires_at 8.
pub const CREATE_ACCOUNT_BODY_LEN: usize = 58;
/// Body length of a [`Transfer`]: id, from, to 16 each + amount 8 + client 16
/// + seq 8 + expires_at 8.
pub const TRANSFER_BODY_LEN: usize = 88;
/// Longest signed message: domain + cluster id + kind + longest body.
pub const MAX_SIGNING_MESSAGE_LEN: usize = 16 + 16 + 1 + TRANSFER_BODY_LEN;

/// Wire tag of each command kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// [`CreateAccount`].
    CreateAccount = 1,
    /// [`Transfer`].
    Transfer = 2,
}

/// Account flags. Bits not named here are reserved and must be zero, so each
/// flag set has one encoding; later features (TigerBeetle-style limits,
/// pending transfers) claim new bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AccountFlags(u16);

impl AccountFlags {
    /// The account may be credited but never debited (e.g. a sink or escrow).
    pub const CREDIT_ONLY: AccountFlags = AccountFlags(1 << 0);
    const KNOWN: u16 = 1;

    /// No flags.
    pub const fn empty() -> AccountFlags {
        AccountFlags(0)
    }

    /// Flags from raw bits; `None` if a reserved bit is set.
    pub fn from_bits(bits: u16) -> Option<AccountFlags> {
        (bits & !Self::KNOWN == 0).then_some(AccountFlags(bits))
    }

    /// The flags as their wire bits.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// Whether every flag of `other` is set here.
    pub fn contains(self, other: AccountFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Open an account with balance zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateAccount {
    /// The new account's id (non-zero, not in use).
    pub id: u128,
    /// Ed25519 public key that signs transfers debiting this account.
    pub owner: [u8; 32],
    /// What the account may do (e.g. go negative).
    pub flags: AccountFlags,
    /// Cluster HLC milliseconds after which this command can no longer
    /// apply (outcome `Expired`); see `Transfer::expires_at`.
    pub expires_at: u64,
}

/// Move `amount` from `from` to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Client-chosen id; a transfer id is decided at most once (see
    /// `dedup.rs`), and never applies after `expires_at`.
    pub id: u128,
    /// Debited account; its owner key signs the transfer.
    pub from: u128,
    /// Credited account.
    pub to: u128,
    /// Units moved (non-zero).
    pub amount: u64,
    /// Client session id (Raft thesis §6.3); scoped to the `from` account.
    pub client: u128,
    /// Sequence number within the session; must increase.
    pub seq: u64,
    /// Cluster HLC milliseconds (the log time of the entry that carries it,
    /// as stamped by the leader) after which this transfer can no longer
    /// apply: applied later it is `Expired`. At most the genesis
    /// `max_expiry_window_ms` ahead of the log time, else `ExpiryTooFar`.
    /// Clients set it to "now + window" (minus a clock-skew margin).
    pub expires_at: u64,
}

impl Transfer {
    /// Whether `other` is the same transfer as `self` for deduplication:
    /// every field but `expires_at`, which only bounds when a command may
    /// apply (a retry re-signed with a later expiry is the same transfer).
    pub fn same_fields(&self, other: &Transfer) -> bool {
        Transfer {
            expires_at: other.expires_at,
            ..*self
        } == *other
    }
}

/// One command of any kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Open an account (signed by the operator).
    CreateAccount(CreateAccount),
    /// Move money (signed by the debited account's owner).
    Transfer(Transfer),
}

/// A command with its Ed25519 signature (`R ‖ S`, not validated by decoding;
/// validity is an apply-time outcome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedCommand {
    /// What is asked.
    pub command: Command,
    /// Ed25519 signature over [`Command::signing_message`]'s bytes.
    pub signature: [u8; SIGNATURE_LEN],
}

/// The exact bytes a signature covers, built on the stack.
pub struct SigningMessage {
    buf: [u8; MAX_SIGNING_MESSAGE_LEN],
    len: usize,
}

impl SigningMessage {
    /// The bytes to sign or verify.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Command {
    /// The signed expiry of either kind.
    pub fn expires_at(&self) -> u64 {
        match self {
            Command::CreateAccount(c) => c.expires_at,
            Command::Transfer(t) => t.expires_at,
        }
    }

    /// Which kind of command this is.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::CreateAccount(_) => CommandKind::CreateAccount,
            Command::Transfer(_) => CommandKind::Transfer,
        }
    }

    /// Appends the canonical body (without kind byte).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Command::CreateAccount(c) => {
                out.put_u128(c.id);
                out.put_bytes(&c.owner);
                out.put_u16(c.flags.bits());
                out.put_u64(c.expires_at);
            }
            Command::Transfer(t) => {
                out.put_u128(t.id);
                out.put_u128(t.from);
                out.put_u128(t.to);
                out.put_u64(t.amount);
                out.put_u128(t.client);
                out.put_u64(t.seq);
                out.put_u64(t.expires_at);
            }
        }
    }

    /// Decodes one body of `kind` from `r`.
    pub(crate) fn decode_body(kind: u8, r: &mut Reader<'_>) -> Result<Command, DecodeError> {
        if kind == CommandKind::CreateAccount as u8 {
            let id = r.u128()?;
            let owner = r.array::<32>()?;
            let flags = AccountFlags::from_bits(r.u16()?).ok_or(DecodeError::ReservedFlags)?;
            let expires_at = r.u64()?;
            Ok(Command::CreateAccount(CreateAccount {
                id,
                owner,
                flags,
                expires_at,
            }))
        } else if kind == CommandKind::Transfer as u8 {
            Ok(Command::Transfer(Transfer {
                id: r.u128()?,
                from: r.u128()?,
                to: r.u128()?,
                amount: r.u64()?,
                client: r.u128()?,
                seq: r.u64()?,
                expires_at: r.u64()?,
            }))
        } else {
            Err(DecodeError::UnknownCommandKind)
        }
    }

    /// `SIGNING_DOMAIN ‖ cluster_id ‖ kind ‖ body`.
    pub fn signing_message(&self, cluster_id: u128) -> SigningMessage {
        let mut body = Vec::with_capacity(TRANSFER_BODY_LEN);
        self.encode_body(&mut body);
        let mut buf = [0u8; MAX_SIGNING_MESSAGE_LEN];
        buf[..16].copy_from_slice(SIGNING_DOMAIN);
        buf[16..32].copy_from_slice(&cluster_id.to_le_bytes());
        buf[32] = self.kind() as u8;
        let len = 33 + body.len();
        buf[33..len].copy_from_slice(&body);
        SigningMessage { buf, len }
    }

    /// Signs this command for `cluster_id`.
    pub fn sign(self, key: &SigningKey, cluster_id: u128) -> SignedCommand {
        let signature = key.sign(self.signing_message(cluster_id).as_bytes());
        SignedCommand {
            command: self,
            signature: signature.to_bytes(),
        }
    }
}

impl CreateAccount {
    /// Signs with the **operator** key (see module doc).
    pub fn sign(self, operator: &SigningKey, cluster_id: u128) -> SignedCommand {
        Command::CreateAccount(self).sign(operator, cluster_id)
    }
}

impl Transfer {
    /// Signs with the owner key of the debited account `from`.
    pub fn sign(self, owner: &SigningKey, cluster_id: u128) -> SignedCommand {
        Command::Transfer(self).sign(owner, cluster_id)
    }
}

impl SignedCommand {
    /// Appends `kind ‖ body ‖ signature`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.put_u8(self.command.kind() as u8);
        self.command.encode_body(out);
        out.put_bytes(&self.signature);
    }

    /// The canonical encoding as a fresh vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + TRANSFER_BODY_LEN + SIGNATURE_LEN);
        self.encode_into(&mut out);
        out
    }

    /// Reads one signed command from `r` (used inside entries).
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<SignedCommand, DecodeError> {
        let kind = r.u8()?;
        let command = Command::decode_body(kind, r)?;
        let signature = r.array::<SIGNATURE_LEN>()?;
        Ok(SignedCommand { command, signature })
    }

    /// Decodes exactly one signed command; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<SignedCommand, DecodeError> {
        let mut r = Reader::new(bytes);
        let cmd = SignedCommand::read(&mut r)?;
        r.finish()?;
        Ok(cmd)
    }
}
