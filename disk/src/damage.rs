//! Damage to the disk itself (`corrupt`): a flipped bit or a cut tail,
//! under the cache, so that no power loss brings the old bytes back.

use rand::{Rng, SeedableRng};

use crate::{held, Disk, Ino, Store};

/// How [`Disk::corrupt`] damages a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// One bit flipped.
    BitFlip,
    /// The tail cut off.
    Truncate,
}

/// What [`Disk::corrupt`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// The file's name.
    pub file: String,
    /// The byte flipped, or the new length.
    pub offset: u64,
    /// The file's length before.
    pub len: u64,
    /// How.
    pub how: Damage,
}

impl<S: Store> Disk<S> {
    /// Damage the disk itself (while the member is stopped): flip one
    /// seeded bit of a seeded non-empty file, or cut its tail off at a
    /// seeded length. Durable: a power loss does not bring it back. `None`
    /// when there is no non-empty file.
    pub fn corrupt(&mut self, seed: u64, how: Damage) -> Option<Corruption> {
        let files: Vec<(String, Ino, u64)> = self
            .names
            .iter()
            .map(|(n, i)| (n.clone(), *i, self.store.len(*i)))
            .filter(|(_, _, len)| *len > 0)
            .collect();
        if files.is_empty() {
            return None;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (name, ino, len) = files[rng.gen_range(0..files.len())].clone();
        let offset = rng.gen_range(0..len);
        match how {
            Damage::BitFlip => {
                let bit: u8 = rng.gen_range(0..8);
                let mut b = self.store.read_at(ino, offset, 1);
                b[0] ^= 1 << bit;
                self.store.write_at(ino, offset, &b);
                // What undoes a pending write over that byte must keep the
                // flip: the damage is on the disk, under the cache.
                for u in self.files.entry(ino).or_default().pending.iter_mut() {
                    if (u.offset..u.offset + u.old.len() as u64).contains(&offset) {
                        u.old[(offset - u.offset) as usize] ^= 1 << bit;
                    }
                }
            }
            Damage::Truncate => {
                self.store.set_len(ino, offset);
                let state = self.files.entry(ino).or_default();
                self.undo_held -= held(state);
                state.pending.clear();
                state.dropped.clear();
            }
        }
        self.counters.injected += 1;
        Some(Corruption {
            file: name,
            offset,
            len,
            how,
        })
    }
}
