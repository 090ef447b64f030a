//! Time without a working leader, placed between the observer's polls:
//! the stretches in which no leader could commit (see `docs/reading-reports.md`).

use faultline_node::leadership::StatusRound;

/// The stretches without a working leader, ns, between the first and the
/// last status poll; `agreed` is each poll's working leader. A leader works
/// from when it became leader (`leading_ms`, but not before the poll ahead
/// of the one that first shows it) for as long as the polls show it working;
/// at the first poll that does not, the silences its followers report say
/// when a majority last heard from it, and it worked until a heartbeat after
/// that (even if polls in between still counted it). Polls without
/// silences (`heartbeat_ms` unknown, older files) end it at that poll.
pub(super) fn leaderless_gaps(
    status: &[StatusRound],
    agreed: &[(u64, Option<(String, u64)>)],
    heartbeat_ms: Option<u64>,
) -> Vec<(u64, u64)> {
    const MS: u64 = 1_000_000;
    // The current working leader: who, since when, and the last poll that
    // showed it working (its time, its index).
    let mut current: Option<(&(String, u64), u64, u64, usize)> = None;
    let mut worked: Vec<(u64, u64)> = Vec::new();
    for (i, (t, l)) in agreed.iter().enumerate() {
        let t = *t;
        if let (Some((who, _, last, last_i)), Some(x)) = (&mut current, l) {
            if *who == x {
                (*last, *last_i) = (t, i);
                continue;
            }
        }
        if let Some(((id, term), since, last, last_i)) = current.take() {
            // The silences of this poll, or (its followers gone to another
            // leader) of the last poll that showed it working.
            let until = match heartbeat_ms {
                None => t,
                Some(hb) => [(t, i), (last, last_i)]
                    .iter()
                    .find_map(|&(at, k)| {
                        status[k]
                            .majority_silence(id, *term)
                            .map(|silent| (at + hb * MS).saturating_sub(silent * MS))
                    })
                    .unwrap_or(last)
                    .clamp(since, t),
            };
            worked.push((since, until));
        }
        if let Some(x) = l {
            let leading = status[i]
                .nodes
                .get(&x.0)
                .and_then(|s| s.as_ref())
                .and_then(|s| s.leading_ms)
                .unwrap_or(0);
            let before = if i > 0 { agreed[i - 1].0 } else { t };
            current = Some((x, t.saturating_sub(leading * MS).max(before), t, i));
        }
    }
    if let Some((_, since, last, _)) = current {
        worked.push((since, last));
    }
    // The complement of the union of `worked` over the polled time.
    let (Some(first), Some(end)) = (agreed.first().map(|a| a.0), agreed.last().map(|a| a.0)) else {
        return Vec::new();
    };
    worked.sort_unstable();
    let mut gaps = Vec::new();
    let mut covered_to = first;
    for (a, b) in worked {
        if a > covered_to {
            gaps.push((covered_to, a));
        }
        covered_to = covered_to.max(b);
    }
    if end > covered_to {
        gaps.push((covered_to, end));
    }
    gaps
}

/// Added to two heartbeat intervals before a follower's leader counts as
/// unheard: ticks, timers and scheduling on a loaded machine are late.
pub(super) const FRESH_SLACK_MS: u64 = 50;
