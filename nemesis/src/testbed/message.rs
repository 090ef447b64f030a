//! Message faults: loss, delay (with jitter), duplication and reordering
//! on the links that touch the fault's target nodes, set in the proxies'
//! link rules or the kernel's nftables and netem, undone at heal.

use serde_json::{json, Value};
use std::collections::BTreeSet;

use super::Testbed;
use crate::fault::{Rule, Target};

impl Testbed {
    /// Start a message fault on the links that touch its target nodes;
    /// returns the nodes it hit and what the history records.
    pub(super) async fn message(
        &mut self,
        rule: Rule,
        target: &Target,
    ) -> anyhow::Result<(Vec<String>, Value)> {
        let nodes: BTreeSet<String> = self.resolve(target).await.into_iter().collect();
        let slots = self.cluster.slot_ids();
        self.net.message(&slots, &nodes, rule, self.tag)?;
        let nodes: Vec<String> = nodes.into_iter().collect();
        Ok((nodes.clone(), json!(nodes)))
    }
}
