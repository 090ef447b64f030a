//! Process faults: pause (SIGSTOP/SIGCONT), crash (SIGKILL, restarted at
//! the heal) and crash loops (killed and restarted again and again), and
//! starting a node in a slot, on fresh ports if its own were taken.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use super::{Applied, Testbed};
use crate::fault::{Class, Proc};
use crate::process::{free_port, ProcState};

impl Testbed {
    /// Start a process fault; returns the nodes it hit and what the history
    /// records.
    pub(super) async fn process_fault(
        &mut self,
        fault: Proc<'_>,
    ) -> anyhow::Result<(Vec<String>, Value)> {
        Ok(match fault {
            Proc::Pause(target) => {
                let nodes = self.resolve(target).await;
                for id in &nodes {
                    if let Some(p) = self.cluster.node_mut(id) {
                        p.pause().with_context(|| format!("pausing {id}"))?;
                    }
                }
                (nodes.clone(), json!(nodes))
            }
            Proc::Crash(target) => {
                let nodes = self.resolve(target).await;
                for id in &nodes {
                    if let Some(p) = self.cluster.node_mut(id) {
                        p.kill();
                    }
                }
                (nodes.clone(), json!(nodes))
            }
            Proc::Restart { target, .. } => {
                let nodes = self.resolve(target).await;
                self.restart_now(&nodes).await?;
                (nodes.clone(), json!(nodes))
            }
        })
    }

    /// End a process fault.
    pub(super) async fn heal_process(
        &mut self,
        applied: &Applied,
        fault: Proc<'_>,
    ) -> anyhow::Result<()> {
        match fault {
            Proc::Pause(_) => {
                for id in &applied.nodes {
                    if let Some(p) = self.cluster.node_mut(id) {
                        p.resume().with_context(|| format!("resuming {id}"))?;
                    }
                }
            }
            Proc::Crash(_) => {
                for id in &applied.nodes {
                    self.launch(id, false)
                        .await
                        .with_context(|| format!("restarting {id}"))?;
                }
            }
            // A crash loop leaves each node running after its last round and
            // touched no link: nothing to undo (healing every link here would
            // end the other parts of a combined fault early).
            Proc::Restart { .. } => {}
        }
        Ok(())
    }

    /// Kill `nodes` and start them again at once on their data; waits until
    /// each answers.
    pub(super) async fn restart_now(&mut self, nodes: &[String]) -> anyhow::Result<()> {
        for id in nodes {
            if let Some(p) = self.cluster.node_mut(id) {
                p.kill();
            }
            self.launch(id, false)
                .await
                .with_context(|| format!("restarting {id}"))?;
        }
        Ok(())
    }

    /// One more round of a crash loop ([`crate::fault::Fault::Restart`]):
    /// the nodes it hit are killed and restarted again. Other faults:
    /// nothing to do.
    pub async fn restart_again(&mut self, applied: &Applied) -> anyhow::Result<()> {
        if let Class::Process(Proc::Restart { .. }) = applied.fault.class() {
            self.restart_now(&applied.nodes).await?;
        }
        Ok(())
    }

    /// Start a new server (empty data directory, `--join`) in a free slot
    /// and wait until it answers.
    pub(super) async fn start_fresh(&mut self, slot: &str) -> anyhow::Result<()> {
        self.cluster.set_active(slot, true);
        self.launch(slot, true).await
    }

    /// Start the node in `slot` (fresh: on an empty data directory, to join)
    /// and wait until it answers as itself. Its ports were found free when
    /// the testbed started, but another program may have taken one since
    /// (a spare slot waits long): if the node exits at start-up, it moves to
    /// new free ports, and the links into it follow.
    pub(super) async fn launch(&mut self, slot: &str, fresh: bool) -> anyhow::Result<()> {
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                let Some(proxies) = self.net.proxy() else {
                    // In a namespace of its own nothing else takes its ports.
                    anyhow::bail!("{slot} could not start: {last}");
                };
                let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                let client = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                tracing::warn!(%slot, %listen, %client, "node could not start on its ports ({last}); moving it");
                proxies.set_upstream(slot, listen);
                self.cluster.move_node(slot, listen, client);
            }
            let p = self
                .cluster
                .node_mut(slot)
                .with_context(|| format!("no slot {slot}"))?;
            if fresh { p.start_fresh() } else { p.restart() }
                .with_context(|| format!("starting {slot}"))?;
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let down = self
                    .cluster
                    .node_mut(slot)
                    .is_none_or(|p| p.state() == ProcState::Down);
                if down {
                    last = "it exited at start-up".into();
                    break;
                }
                // The answer must come from this node, not from another
                // program that took its client port.
                if let Ok(s) = self.cluster.status(slot, Duration::from_millis(300)).await {
                    if s.id == slot {
                        return Ok(());
                    }
                }
                if Instant::now() > deadline {
                    anyhow::bail!("{slot} did not answer within 15 s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        anyhow::bail!("{slot} could not start: {last}")
    }
}
