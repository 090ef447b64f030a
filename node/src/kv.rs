//! The key-value state machine: registers keyed by strings holding `i64`,
//! and lists of `i64` that list-append transactions append to and read
//! whole (a transaction is one log entry, applied at once).
//!
//! Every command carries a [`RequestId`]; a command whose id was applied
//! before is not applied again. That matters because a forwarded request
//! crosses the faulty network and may be duplicated on the way: without the
//! check, a late duplicate of `write 5` could overwrite a newer write.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// Identifies one client request across forwarding and duplication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// Random per node process start, so restarts never reuse ids.
    pub session: u64,
    /// Counter within the session.
    pub seq: u64,
}

/// An operation on the registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Read a register (goes through the log, so it is linearizable).
    Get {
        /// The register.
        key: String,
    },
    /// Overwrite a register.
    Put {
        /// The register.
        key: String,
        /// The new value.
        value: i64,
    },
    /// Set `key` to `new` only if it holds `expected`.
    Cas {
        /// The register.
        key: String,
        /// The value it must hold.
        expected: i64,
        /// The value to store.
        new: i64,
    },
    /// A list-append transaction: its micro-operations applied in order,
    /// all at once (one entry of the log).
    Txn {
        /// The micro-operations (at most [`MAX_TXN_OPS`]).
        ops: Vec<MicroOp>,
    },
}

/// The most micro-operations of one transaction.
pub const MAX_TXN_OPS: usize = 64;

/// One micro-operation of a list-append transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MicroOp {
    /// Append `value` to the list at `key`.
    Append {
        /// The list.
        key: String,
        /// The element.
        value: i64,
    },
    /// Read the whole list at `key`.
    Read {
        /// The list.
        key: String,
    },
}

impl MicroOp {
    /// Its key.
    pub fn key(&self) -> &str {
        match self {
            MicroOp::Append { key, .. } | MicroOp::Read { key } => key,
        }
    }
}

/// A command as it sits in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Who asked.
    pub id: RequestId,
    /// What to do.
    pub command: Command,
}

/// The result of applying a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// Done; for `Get` the value read, for `Put`/`Cas` the value now stored.
    Value(Option<i64>),
    /// The cas did not match: nothing changed.
    CasMismatch {
        /// What the register held.
        actual: Option<i64>,
    },
    /// This request id was applied before; this copy changed nothing.
    Duplicate,
    /// A membership change's first configuration entry committed at `index`.
    Membership {
        /// The entry's log index.
        index: u64,
    },
    /// A transaction applied: per micro-operation, the list read (an empty
    /// list for a key never appended to), or none for an append.
    Txn(Vec<Option<Vec<i64>>>),
}

/// Request ids remembered per session for spotting duplicates. A copy of
/// a request that arrives after this many later requests of its session were
/// applied counts as a duplicate too (its client was told the outcome is
/// unknown long before), which keeps the memory bounded.
pub const DEDUP_WINDOW: usize = 4096;
/// Sessions remembered; the one applied least recently is forgotten first.
pub const DEDUP_SESSIONS: usize = 1024;

/// The recent request ids of one session.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    /// Every seq at or below this counts as applied.
    floor: u64,
    /// Applied seqs above `floor`, at most `DEDUP_WINDOW`.
    seen: BTreeSet<u64>,
    /// Apply count when this session was last used (to forget the oldest).
    last_used: u64,
}

/// The registers.
#[derive(Debug, Default)]
pub struct Store {
    registers: HashMap<String, i64>,
    lists: HashMap<String, Vec<i64>>,
    sessions: HashMap<u64, Session>,
    applied_count: u64,
}

impl Store {
    /// Apply one committed command.
    pub fn apply(&mut self, p: &Proposal) -> Applied {
        if !self.first_time(p.id) {
            return Applied::Duplicate;
        }
        match &p.command {
            Command::Get { key } => Applied::Value(self.registers.get(key).copied()),
            Command::Put { key, value } => {
                self.registers.insert(key.clone(), *value);
                Applied::Value(Some(*value))
            }
            Command::Cas { key, expected, new } => {
                let actual = self.registers.get(key).copied();
                if actual == Some(*expected) {
                    self.registers.insert(key.clone(), *new);
                    Applied::Value(Some(*new))
                } else {
                    Applied::CasMismatch { actual }
                }
            }
            Command::Txn { ops } => Applied::Txn(
                ops.iter()
                    .map(|op| match op {
                        MicroOp::Append { key, value } => {
                            self.lists.entry(key.clone()).or_default().push(*value);
                            None
                        }
                        MicroOp::Read { key } => Some(self.local_list(key)),
                    })
                    .collect(),
            ),
        }
    }

    /// Record `id` as applied; false when it was (or counts as) applied before.
    /// Deterministic: every server applies the same log the same way.
    fn first_time(&mut self, id: RequestId) -> bool {
        self.applied_count += 1;
        if !self.sessions.contains_key(&id.session) && self.sessions.len() >= DEDUP_SESSIONS {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(s, v)| (v.last_used, **s))
                .map(|(s, _)| *s);
            if let Some(s) = oldest {
                self.sessions.remove(&s);
            }
        }
        let session = self.sessions.entry(id.session).or_default();
        session.last_used = self.applied_count;
        if id.seq <= session.floor || !session.seen.insert(id.seq) {
            return false;
        }
        if session.seen.len() > DEDUP_WINDOW {
            if let Some(lowest) = session.seen.pop_first() {
                session.floor = lowest;
            }
        }
        true
    }

    /// The current value of `key`, without going through the log.
    pub fn local_read(&self, key: &str) -> Option<i64> {
        self.registers.get(key).copied()
    }

    /// The list at `key`, without going through the log (empty when
    /// nothing was appended to it).
    pub fn local_list(&self, key: &str) -> Vec<i64> {
        self.lists.get(key).cloned().unwrap_or_default()
    }

    /// The whole state machine as bytes, for a snapshot: the registers, the
    /// duplicate-detection sessions (without them a request applied before
    /// the snapshot could be applied again after it) and the lists, in key
    /// order, so every server's snapshot of the same index is the same
    /// bytes.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut registers: Vec<(&String, &i64)> = self.registers.iter().collect();
        registers.sort_unstable();
        let mut sessions: Vec<(&u64, &Session)> = self.sessions.iter().collect();
        sessions.sort_unstable_by_key(|(s, _)| **s);
        let mut lists: Vec<(&String, &Vec<i64>)> = self.lists.iter().collect();
        lists.sort_unstable_by_key(|(k, _)| *k);
        bincode::serialize(&(registers, sessions, self.applied_count, lists))
            .expect("the state machine serializes")
    }

    /// A state machine from [`Store::to_snapshot`]'s bytes (or from a
    /// snapshot of a node from before lists, which had none).
    pub fn from_snapshot(bytes: &[u8]) -> Result<Store, String> {
        type Before = (Vec<(String, i64)>, Vec<(u64, Session)>, u64);
        type Image = (
            Vec<(String, i64)>,
            Vec<(u64, Session)>,
            u64,
            Vec<(String, Vec<i64>)>,
        );
        let (registers, sessions, applied_count, lists): Image = match bincode::deserialize(bytes) {
            Ok(image) => image,
            Err(e) => match bincode::deserialize::<Before>(bytes) {
                Ok((r, s, a))
                    if bincode::serialized_size(&(&r, &s, a)).ok() == Some(bytes.len() as u64) =>
                {
                    (r, s, a, Vec::new())
                }
                _ => return Err(format!("undecodable snapshot state: {e}")),
            },
        };
        Ok(Store {
            registers: registers.into_iter().collect(),
            lists: lists.into_iter().collect(),
            sessions: sessions.into_iter().collect(),
            applied_count,
        })
    }

    /// How many registers hold a value.
    pub fn len(&self) -> usize {
        self.registers.len()
    }

    /// Whether no register holds a value.
    pub fn is_empty(&self) -> bool {
        self.registers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(seq: u64, command: Command) -> Proposal {
        Proposal {
            id: RequestId { session: 1, seq },
            command,
        }
    }

    #[test]
    fn registers_read_write_and_cas() {
        let mut s = Store::default();
        let k = || "k".to_string();
        assert_eq!(
            s.apply(&p(1, Command::Get { key: k() })),
            Applied::Value(None)
        );
        assert_eq!(
            s.apply(&p(2, Command::Put { key: k(), value: 3 })),
            Applied::Value(Some(3))
        );
        assert_eq!(
            s.apply(&p(
                3,
                Command::Cas {
                    key: k(),
                    expected: 4,
                    new: 5
                }
            )),
            Applied::CasMismatch { actual: Some(3) }
        );
        assert_eq!(
            s.apply(&p(
                4,
                Command::Cas {
                    key: k(),
                    expected: 3,
                    new: 5
                }
            )),
            Applied::Value(Some(5))
        );
        assert_eq!(
            s.apply(&p(5, Command::Get { key: k() })),
            Applied::Value(Some(5))
        );
    }

    #[test]
    fn a_snapshot_restores_registers_and_duplicate_detection() {
        let mut s = Store::default();
        for seq in 1..=50 {
            s.apply(&p(
                seq,
                Command::Put {
                    key: format!("k{}", seq % 7),
                    value: seq as i64,
                },
            ));
        }
        let bytes = s.to_snapshot();
        let mut r = Store::from_snapshot(&bytes).unwrap();
        assert_eq!(r.to_snapshot(), bytes, "the same state, the same bytes");
        assert_eq!(r.local_read("k1"), Some(50));
        // A request applied before the snapshot stays applied after it.
        let again = p(
            49,
            Command::Put {
                key: "k0".into(),
                value: -1,
            },
        );
        assert_eq!(r.apply(&again), Applied::Duplicate);
        assert!(Store::from_snapshot(&bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn a_transaction_appends_and_reads_at_once_and_survives_a_snapshot() {
        let mut s = Store::default();
        let txn = |ops| Command::Txn { ops };
        let append = |k: &str, v| MicroOp::Append {
            key: k.into(),
            value: v,
        };
        let read = |k: &str| MicroOp::Read { key: k.into() };
        assert_eq!(
            s.apply(&p(1, txn(vec![read("a"), append("a", 1), read("a")]))),
            Applied::Txn(vec![Some(vec![]), None, Some(vec![1])])
        );
        assert_eq!(
            s.apply(&p(2, txn(vec![append("a", 2), append("b", 7), read("a")]))),
            Applied::Txn(vec![None, None, Some(vec![1, 2])])
        );
        // A duplicate of an applied transaction appends nothing.
        assert_eq!(
            s.apply(&p(2, txn(vec![append("a", 2)]))),
            Applied::Duplicate
        );
        let bytes = s.to_snapshot();
        let r = Store::from_snapshot(&bytes).unwrap();
        assert_eq!(r.local_list("a"), vec![1, 2]);
        assert_eq!(r.local_list("b"), vec![7]);
        assert_eq!(r.to_snapshot(), bytes);
        // A snapshot from before lists still loads, with none.
        let before = bincode::serialize(&(
            vec![("k".to_string(), 3i64)],
            Vec::<(u64, Session)>::new(),
            9u64,
        ))
        .unwrap();
        let old = Store::from_snapshot(&before).unwrap();
        assert_eq!(old.local_read("k"), Some(3));
        assert!(old.local_list("a").is_empty());
    }

    #[test]
    fn a_duplicated_request_is_applied_once() {
        let mut s = Store::default();
        let put = |seq, value| {
            p(
                seq,
                Command::Put {
                    key: "k".into(),
                    value,
                },
            )
        };
        s.apply(&put(1, 5));
        s.apply(&put(2, 6));
        assert_eq!(s.apply(&put(1, 5)), Applied::Duplicate);
        assert_eq!(s.local_read("k"), Some(6));
    }

    #[test]
    fn duplicate_detection_survives_reordering_and_stays_bounded() {
        let mut s = Store::default();
        let put = |session, seq| Proposal {
            id: RequestId { session, seq },
            command: Command::Put {
                key: "k".into(),
                value: seq as i64,
            },
        };
        // Out of order within the window: each applies once.
        assert_eq!(s.apply(&put(1, 3)), Applied::Value(Some(3)));
        assert_eq!(s.apply(&put(1, 1)), Applied::Value(Some(1)));
        assert_eq!(s.apply(&put(1, 3)), Applied::Duplicate);
        let n = DEDUP_WINDOW as u64 * 3;
        for seq in 4..=n {
            assert_eq!(s.apply(&put(1, seq)), Applied::Value(Some(seq as i64)));
        }
        assert!(s.sessions[&1].seen.len() <= DEDUP_WINDOW);
        // A copy from before the window counts as a duplicate (never applied
        // twice), and so does a recent one.
        assert_eq!(s.apply(&put(1, 2)), Applied::Duplicate);
        assert_eq!(s.apply(&put(1, n)), Applied::Duplicate);
        // Sessions beyond the limit: the least recently used is forgotten.
        for session in 2..=(DEDUP_SESSIONS as u64 + 1) {
            s.apply(&put(session, 1));
        }
        assert_eq!(s.sessions.len(), DEDUP_SESSIONS);
        assert!(!s.sessions.contains_key(&1));
    }
}
