//! The frame decoder takes bytes from any process that reaches a port: on
//! arbitrary bytes, and on valid frames with bytes flipped, cut or
//! inserted, it returns a message or an error — never a panic or an abort
//! (a length field inside a frame cannot make it allocate without bound).

use faultline_node::protocol::{decode, encode, ClientEnvelope, ClientRequest, PeerFrame};
use faultline_node::raft::{Entry, EntryData, Message, MessageBody};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, noting the largest single request each thread
/// makes: what a length field made the decoder ask for, measured rather
/// than timed.
struct Largest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // During a thread's teardown the cell may be gone; nothing to note then.
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
}

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The largest single allocation `f` asks for on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|c| c.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

fn samples() -> Vec<Vec<u8>> {
    let append = PeerFrame::Raft(Message {
        from: "n1".into(),
        to: "n2".into(),
        term: 3,
        body: MessageBody::AppendEntries {
            prev_log_index: 4,
            prev_log_term: 2,
            entries: vec![Entry {
                term: 3,
                index: 5,
                data: EntryData::Command(vec![1, 2, 3]),
            }],
            leader_commit: 4,
        },
    });
    let hello = PeerFrame::Hello {
        cluster: "c1".into(),
        from: "n1".into(),
    };
    let put = ClientEnvelope {
        id: 9,
        request: ClientRequest::Cas {
            key: "k".into(),
            expected: 1,
            new: 2,
        },
    };
    vec![
        encode(&append).to_vec(),
        encode(&hello).to_vec(),
        encode(&put).to_vec(),
    ]
}

fn decode_all(bytes: &[u8]) {
    let _ = decode::<PeerFrame>(bytes);
    let _ = decode::<ClientEnvelope>(bytes);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_all(&bytes);
    }

    #[test]
    fn an_edited_frame_decodes_or_fails(which in 0..3usize, at in any::<prop::sample::Index>(), b in any::<u8>(), op in 0..4u8) {
        let mut v = samples()[which].clone();
        let i = at.index(v.len());
        match op {
            0 => v[i] = b,
            1 => { v.remove(i); }
            2 => v.insert(i, b),
            _ => v.truncate(i),
        }
        decode_all(&v);
    }

    #[test]
    fn a_huge_length_inside_a_frame_is_an_error(which in 0..3usize, at in any::<prop::sample::Index>()) {
        // Eight 0xFF bytes where a length might be: a vector or string
        // claiming 2^64 - 1 elements.
        let mut v = samples()[which].clone();
        let i = at.index(v.len());
        v.splice(i..i, [0xFF; 8]);
        decode_all(&v);
    }
}

/// Every length field of every sample (a string's or a vector's u64
/// prefix) set to 2^64 - 1, or to 2^40: the decoder refuses the frame
/// without allocating what the length claims: no single allocation while
/// decoding exceeds 1 MiB (serde's cautious pre-allocation for a sequence
/// of unknown true length; the frames are under 100 bytes).
#[test]
fn a_huge_length_in_a_length_field_is_an_error() {
    // Where "n1", "n2", "c1", "k" and the command's bytes are preceded by
    // their lengths.
    let fields: [&[u8]; 5] = [b"n1", b"n2", b"c1", b"k", &[1, 2, 3]];
    let mut tried = 0;
    for (which, sample) in samples().iter().enumerate() {
        for field in fields {
            let mut prefix = (field.len() as u64).to_le_bytes().to_vec();
            prefix.extend_from_slice(field);
            let Some(at) = sample.windows(prefix.len()).position(|w| w == prefix) else {
                continue;
            };
            for huge in [u64::MAX, 1 << 40] {
                let mut v = sample.clone();
                v[at..at + 8].copy_from_slice(&huge.to_le_bytes());
                let ((peer, client), largest) =
                    largest_allocation(|| (decode::<PeerFrame>(&v), decode::<ClientEnvelope>(&v)));
                assert!(
                    peer.is_err() && client.is_err(),
                    "sample {which}, the length of {field:?} set to {huge}: decoded"
                );
                assert!(
                    largest <= 1 << 20,
                    "sample {which}, the length of {field:?} set to {huge}: \
                     an allocation of {largest} bytes while decoding"
                );
                tried += 1;
            }
        }
    }
    // Every sample has at least one length field found above.
    assert!(tried >= 6, "only {tried} length fields found");
}

#[test]
fn the_samples_decode() {
    for s in samples() {
        assert!(decode::<PeerFrame>(&s).is_ok() || decode::<ClientEnvelope>(&s).is_ok());
    }
}
