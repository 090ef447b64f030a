//! The proxy on a seeded stream: the observed drop, duplicate and reorder
//! rates match the configured probabilities within statistical bounds, and
//! a blocked link keeps its connection up while dropping everything;
//! message filters pass only votes, or shorten appends to older entries.
//! Decisions come from the link's seeded RNG in arrival order, and one
//! connection delivers in order, so each test is deterministic.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use faultline_nemesis::net::proxy::{start_link, LinkRules};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{FramedRead, FramedWrite};

/// A receiver that records the sequence numbers of the frames it gets.
async fn sink() -> (std::net::SocketAddr, Arc<Mutex<Vec<u32>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let g = g.clone();
            tokio::spawn(async move {
                let mut f = FramedRead::new(s, faultline_node::protocol::codec());
                while let Some(Ok(frame)) = f.next().await {
                    g.lock()
                        .unwrap()
                        .push(u32::from_be_bytes(frame[..4].try_into().unwrap()));
                }
            });
        }
    });
    (addr, got)
}

async fn send_through(
    rules: LinkRules,
    n: u32,
) -> (Vec<u32>, faultline_nemesis::net::proxy::LinkStats) {
    let (upstream, got) = sink().await;
    let link = start_link("a", "b", upstream, 7).await.unwrap();
    link.set_rules(rules);
    let s = TcpStream::connect(link.addr()).await.unwrap();
    let mut out = FramedWrite::new(s, faultline_node::protocol::codec());
    for i in 0..n {
        out.send(Bytes::from(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    // Every message is accounted for once delivered or dropped.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = link.stats();
        let received = got.lock().unwrap().len() as u64;
        if st.dropped + st.passed - st.duplicated == n as u64 && received == st.passed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "messages unaccounted for: {st:?}, received {received}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = got.lock().unwrap().clone();
    (v, link.stats())
}

/// |observed - expected| within 5 standard deviations of a binomial.
fn within(observed: u64, n: u64, p: f64) -> bool {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (observed as f64 - mean).abs() <= 5.0 * sd + 1.0
}

#[tokio::test]
async fn loss_matches_its_probability() {
    let n = 5000;
    let (got, st) = send_through(
        LinkRules {
            loss: 0.2,
            ..LinkRules::pass()
        },
        n,
    )
    .await;
    assert!(
        within(st.dropped, n as u64, 0.2),
        "dropped {} of {n}",
        st.dropped
    );
    assert_eq!(got.len() as u64, n as u64 - st.dropped);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "loss alone keeps order"
    );
}

#[tokio::test]
async fn duplication_matches_its_probability() {
    let n = 5000;
    let (got, st) = send_through(
        LinkRules {
            duplicate: 0.1,
            ..LinkRules::pass()
        },
        n,
    )
    .await;
    let dups = got.len() as u64 - n as u64;
    assert_eq!(dups, st.duplicated);
    assert!(within(dups, n as u64, 0.1), "duplicated {dups} of {n}");
}

#[tokio::test]
async fn reordering_matches_its_probability() {
    let n = 4000;
    let (got, st) = send_through(
        LinkRules {
            reorder: 0.3,
            ..LinkRules::pass()
        },
        n,
    )
    .await;
    assert_eq!(got.len(), n as usize);
    // A held-back message arrives after some later one.
    let mut max = 0u32;
    let mut late = 0u64;
    for (i, &x) in got.iter().enumerate() {
        if i > 0 && x < max {
            late += 1;
        }
        max = max.max(x);
    }
    assert!(
        late <= st.delayed,
        "every late message was held back: late {late}, held {}",
        st.delayed
    );
    // Held messages that nothing overtook are not late; allow for a few.
    assert!(
        within(st.delayed, n as u64, 0.3),
        "held {} of {n}",
        st.delayed
    );
    // Most held messages are overtaken (a loaded machine may send slowly
    // enough that a few are not).
    assert!(
        late as f64 >= st.delayed as f64 * 0.5,
        "late {late}, held {}",
        st.delayed
    );
}

#[tokio::test]
async fn delay_holds_every_message_at_least_the_base() {
    let (upstream, got) = sink().await;
    let link = start_link("a", "b", upstream, 1).await.unwrap();
    link.set_rules(LinkRules {
        delay: Duration::from_millis(200),
        ..LinkRules::pass()
    });
    let s = TcpStream::connect(link.addr()).await.unwrap();
    let mut out = FramedWrite::new(s, faultline_node::protocol::codec());
    let t = Instant::now();
    out.send(Bytes::from(1u32.to_be_bytes().to_vec()))
        .await
        .unwrap();
    while got.lock().unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn a_blocked_link_drops_silently_and_heals_without_reconnecting() {
    let (upstream, got) = sink().await;
    let link = start_link("a", "b", upstream, 1).await.unwrap();
    let s = TcpStream::connect(link.addr()).await.unwrap();
    let mut out = FramedWrite::new(s, faultline_node::protocol::codec());
    link.set_rules(LinkRules {
        blocked: true,
        ..LinkRules::pass()
    });
    for i in 0..100u32 {
        out.send(Bytes::from(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while link.stats().dropped < 100 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    link.set_rules(LinkRules::pass());
    // Same connection, still up: the next message goes through.
    out.send(Bytes::from(1000u32.to_be_bytes().to_vec()))
        .await
        .unwrap();
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*got.lock().unwrap(), vec![1000]);
}

mod filters {
    use super::*;
    use faultline_nemesis::net::proxy::MessageFilter;
    use faultline_node::protocol::{decode, encode, PeerFrame};
    use faultline_node::raft::{Entry, EntryData, Message, MessageBody};

    fn append(terms: &[u64]) -> PeerFrame {
        PeerFrame::Raft(Message {
            from: "a".into(),
            to: "b".into(),
            term: 3,
            body: MessageBody::AppendEntries {
                prev_log_index: 4,
                prev_log_term: 2,
                entries: terms
                    .iter()
                    .enumerate()
                    .map(|(i, &term)| Entry {
                        term,
                        index: 5 + i as u64,
                        data: EntryData::Noop,
                    })
                    .collect(),
                leader_commit: 4,
            },
        })
    }

    fn vote() -> PeerFrame {
        PeerFrame::Raft(Message {
            from: "a".into(),
            to: "b".into(),
            term: 3,
            body: MessageBody::RequestVote {
                last_log_index: 4,
                last_log_term: 2,
                pre_vote: false,
            },
        })
    }

    fn granted() -> PeerFrame {
        PeerFrame::Raft(Message {
            from: "a".into(),
            to: "b".into(),
            term: 3,
            body: MessageBody::RequestVoteResponse {
                granted: true,
                pre_vote: true,
            },
        })
    }

    /// The terms of the entries of each AppendEntries that arrived, and
    /// `None` for each other message, in arrival order.
    async fn through(filter: MessageFilter, frames: Vec<Bytes>) -> (Vec<Option<Vec<u64>>>, u64) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = l.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        tokio::spawn(async move {
            let Ok((s, _)) = l.accept().await else { return };
            let mut f = FramedRead::new(s, faultline_node::protocol::codec());
            while let Some(Ok(frame)) = f.next().await {
                let terms = match decode::<PeerFrame>(&frame).unwrap() {
                    PeerFrame::Raft(Message {
                        body: MessageBody::AppendEntries { entries, .. },
                        ..
                    }) => Some(entries.iter().map(|e| e.term).collect()),
                    _ => None,
                };
                g.lock().unwrap().push(terms);
            }
        });
        let link = start_link("a", "b", upstream, 3).await.unwrap();
        link.set_rules(LinkRules {
            filter: Some(filter),
            ..LinkRules::pass()
        });
        let n = frames.len() as u64;
        let s = TcpStream::connect(link.addr()).await.unwrap();
        let mut out = FramedWrite::new(s, faultline_node::protocol::codec());
        for f in frames {
            out.send(f).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let st = link.stats();
            if st.passed + st.dropped == n && got.lock().unwrap().len() as u64 == st.passed {
                break;
            }
            assert!(Instant::now() < deadline, "unaccounted for: {st:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let v = got.lock().unwrap().clone();
        (v, link.stats().filtered)
    }

    #[tokio::test]
    async fn entries_up_to_a_term_shorten_appends_and_pass_the_rest() {
        let frames = vec![
            encode(&append(&[2, 3])),
            encode(&vote()),
            encode(&append(&[1, 2])),
            encode(&append(&[3])),
        ];
        let (got, filtered) = through(MessageFilter::EntriesUpToTerm(2), frames).await;
        assert_eq!(
            got,
            vec![Some(vec![2]), None, Some(vec![1, 2]), Some(vec![])]
        );
        assert_eq!(filtered, 2);
    }

    #[tokio::test]
    async fn votes_only_drops_appends_and_what_does_not_decode() {
        let frames = vec![
            encode(&append(&[2])),
            encode(&vote()),
            Bytes::from_static(b"not a peer message"),
            encode(&append(&[])),
            encode(&granted()),
        ];
        let (got, filtered) = through(MessageFilter::VotesOnly, frames).await;
        assert_eq!(got, vec![None, None]);
        assert_eq!(filtered, 3);
    }
}
