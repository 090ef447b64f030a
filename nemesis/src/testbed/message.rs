//! Message faults: loss, delay (with jitter), duplication and reordering
//! on the links that touch the fault's target nodes, set in the proxies'
//! link rules and undone by healing the links.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::Testbed;
use crate::fault::{Fault, Target};
use crate::proxy::LinkRules;

impl Testbed {
    /// Start a message fault; returns the nodes it hit and what the history
    /// records.
    pub(super) async fn message(&mut self, fault: &Fault) -> (Vec<String>, Value) {
        match fault {
            Fault::Loss { p, target } => self.message_fault(target, |r| r.loss = *p).await,
            Fault::Delay {
                ms,
                jitter_ms,
                target,
            } => {
                let (ms, jitter) = (
                    Duration::from_millis(*ms),
                    Duration::from_millis(*jitter_ms),
                );
                self.message_fault(target, |r| {
                    r.delay = ms;
                    r.jitter = jitter;
                })
                .await
            }
            Fault::Duplicate { p, target } => {
                self.message_fault(target, |r| r.duplicate = *p).await
            }
            Fault::Reorder { p, target } => self.message_fault(target, |r| r.reorder = *p).await,
            other => unreachable!("{other} is not a message fault"),
        }
    }

    pub(super) async fn message_fault(
        &mut self,
        target: &Target,
        f: impl Fn(&mut LinkRules),
    ) -> (Vec<String>, Value) {
        let nodes: BTreeSet<String> = self.resolve(target).await.into_iter().collect();
        self.net.update_touching(&nodes, f);
        let nodes: Vec<String> = nodes.into_iter().collect();
        (nodes.clone(), json!(nodes))
    }
}
