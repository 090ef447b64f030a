//! Sequential specifications that histories are checked against.

use std::fmt::Debug;
use std::hash::Hash;

use crate::history::{Op, OpKind, Outcome};

/// A sequential object: its state and what each operation does to it.
pub trait Model: Sync {
    /// The object's state.
    type State: Clone + Eq + Hash + Debug + Send;
    /// The state before any operation.
    fn init(&self) -> Self::State;
    /// Apply `op` to `state`: the new state, or `None` when `op` could not
    /// have happened (returned) in `state`. For `info` operations the result
    /// is unknown, so only the effect matters.
    fn step(&self, state: &Self::State, op: &Op) -> Option<Self::State>;
    /// The one state in which `op` can be linearized, if it must be
    /// linearized at all and only there (an ok read of a register: the value
    /// it read). Used for pruning when states never recur.
    fn requires(&self, _op: &Op) -> Option<Self::State> {
        None
    }
    /// Whether `op` only observes: wherever it can be linearized it leaves
    /// the state as it was (an ok read of a register). Such an operation,
    /// when it can be linearized now, is linearized now without trying
    /// anything else first (see [`crate::search`]).
    fn observes_only(&self, _op: &Op) -> bool {
        false
    }
    /// The state, for explanations.
    fn describe(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}

/// A read/write/cas register holding an `i64`, initially absent (`null`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Register;

impl Model for Register {
    type State = Option<i64>;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(&self, state: &Option<i64>, op: &Op) -> Option<Option<i64>> {
        match op.kind {
            OpKind::Read => match op.outcome {
                Outcome::Ok => (op.result == *state).then_some(*state),
                _ => Some(*state),
            },
            OpKind::Write => Some(op.arg),
            OpKind::Cas => (*state == op.arg).then_some(op.arg2),
            // No register explains a transaction or a lock's operation.
            OpKind::Txn | OpKind::Acquire | OpKind::Release => None,
        }
    }

    fn requires(&self, op: &Op) -> Option<Option<i64>> {
        match (op.kind, op.outcome) {
            (OpKind::Read, Outcome::Ok) => Some(op.result),
            (OpKind::Cas, Outcome::Ok) => Some(op.arg),
            _ => None,
        }
    }

    fn observes_only(&self, op: &Op) -> bool {
        op.kind == OpKind::Read && op.outcome == Outcome::Ok
    }

    fn describe(&self, state: &Option<i64>) -> String {
        state.map_or("null".to_string(), |v| v.to_string())
    }
}
