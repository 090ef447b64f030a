//! What a leader knows about each follower's log.

/// How the leader sends to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// The match point is unknown: send one AppendEntries at a time and wait
    /// for its answer (or the next heartbeat) before sending another.
    Probe,
    /// The follower matches up to `match_index`: stream new entries as they
    /// come, advancing `next_index` optimistically.
    Replicate,
    /// The follower needs entries the leader compacted away: send the
    /// snapshot ending at `index`, one chunk at a time, each after the
    /// answer to the previous one (or the next heartbeat).
    Snapshot {
        /// The snapshot's last included index.
        index: u64,
        /// The bytes the follower confirmed so far: where the next chunk starts.
        offset: u64,
    },
}

/// The leader's view of one follower.
///
/// Invariant: `match_index < next_index`.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The highest index known to be replicated on the follower.
    pub match_index: u64,
    /// The index of the next entry to send.
    pub next_index: u64,
    /// How to send.
    pub state: ProgressState,
    /// In `Probe`: a probe is outstanding; in `Snapshot`: a chunk is. Wait
    /// before sending another.
    pub probe_sent: bool,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// The match point at which the follower last answered a probe with a
    /// log that ends below it (the leader asked the follower about it once).
    pub suspected_loss: Option<u64>,
    /// The leader's `leading_ticks` when this follower last answered it.
    pub last_heard: u64,
}

impl Progress {
    /// A follower about which nothing is known yet; `next_index` starts just
    /// past the leader's last entry (Raft paper, Figure 2).
    pub fn new(next_index: u64) -> Self {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            recent_active: false,
            suspected_loss: None,
            last_heard: 0,
        }
    }

    /// Whether the leader may send an AppendEntries now.
    pub fn can_send(&self) -> bool {
        match self.state {
            ProgressState::Probe | ProgressState::Snapshot { .. } => !self.probe_sent,
            ProgressState::Replicate => true,
        }
    }

    /// Record a successful append up to `index`; returns whether it was news.
    pub fn on_success(&mut self, index: u64) -> bool {
        self.suspected_loss = None;
        match self.state {
            // A late answer to an AppendEntries sent before the snapshot:
            // news about the match point, but the transfer goes on.
            ProgressState::Snapshot { index: s, .. } if index < s => {}
            _ => {
                self.probe_sent = false;
                self.state = ProgressState::Replicate;
            }
        }
        let news = if index > self.match_index {
            self.match_index = index;
            self.next_index = self.next_index.max(index + 1);
            true
        } else {
            false
        };
        // Invariant: match_index < next_index (the match never goes back).
        assert!(
            self.match_index < self.next_index,
            "invariant match < next broken: match {} next {}",
            self.match_index,
            self.next_index
        );
        news
    }

    /// A rejection of the outstanding probe says the follower's log ends at
    /// `has`, below `match_index`: either a late copy of an old answer, or a
    /// follower that lost entries it acknowledged. Returns true the first
    /// time for this match point (the leader then asks the follower, which
    /// alone can tell the two apart).
    pub fn suspect_loss(&mut self, reject_index: u64, has: u64) -> bool {
        let answers_probe =
            self.state == ProgressState::Probe && reject_index + 1 == self.next_index;
        if !answers_probe
            || has >= self.match_index
            || self.suspected_loss == Some(self.match_index)
        {
            return false;
        }
        self.suspected_loss = Some(self.match_index);
        true
    }

    /// The follower confirmed that its log ends at `has`, below the match
    /// point: probe it from there. Returns whether anything changed.
    pub fn reset_to(&mut self, has: u64) -> bool {
        if has >= self.match_index {
            return false;
        }
        self.match_index = has;
        self.next_index = has + 1;
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.suspected_loss = None;
        true
    }

    /// Start sending the snapshot ending at `index`.
    pub fn begin_snapshot(&mut self, index: u64) {
        self.state = ProgressState::Snapshot { index, offset: 0 };
        self.probe_sent = false;
    }

    /// The follower holds `received` bytes of the snapshot ending at
    /// `index`; returns whether that answers the transfer under way.
    pub fn on_snapshot_chunk(&mut self, index: u64, received: u64) -> bool {
        match &mut self.state {
            ProgressState::Snapshot { index: i, offset } if *i == index => {
                // The answer to a duplicated chunk says nothing new; sending
                // again on it would double every later chunk.
                let news = received != *offset || !self.probe_sent;
                *offset = received;
                if news {
                    self.probe_sent = false;
                }
                news
            }
            _ => false,
        }
    }

    /// Record a rejection of `reject_index` and move `next_index` back to
    /// `hint_next` (clamped to stay above the match point and to move back).
    /// Returns false when the rejection is stale and was ignored.
    pub fn on_reject(&mut self, reject_index: u64, hint_next: u64) -> bool {
        if reject_index < self.match_index {
            return false; // answers an older message; we already know more
        }
        if matches!(self.state, ProgressState::Snapshot { .. }) {
            return false; // answers an AppendEntries sent before the snapshot
        }
        if self.state == ProgressState::Probe && reject_index + 1 != self.next_index {
            return false; // not the probe we are waiting for
        }
        self.next_index = hint_next.min(reject_index).max(self.match_index + 1);
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        true
    }
}
