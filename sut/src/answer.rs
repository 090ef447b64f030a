//! How a client's answer becomes a history outcome. This mapping is what
//! keeps the checker honest, so it is spelled out here. For faultline's
//! node ([`classify`]):
//!
//! | what the client saw | recorded | why |
//! |---|---|---|
//! | `Ok(v)` | `ok` | the node confirmed the operation took effect |
//! | `CasMismatch` | `fail` | the cas was applied and compared false: nothing changed |
//! | `NotLeader`, `NoLeader`, `BadRequest` | `fail` | rejected before it was proposed |
//! | cannot connect | `fail` | the request was never sent |
//! | `Timeout`, `LeadershipLost`, `ShuttingDown` | `info` | proposed, outcome unknown |
//! | no answer in time, connection lost after sending | `info` | it may have arrived and been applied |
//!
//! For etcd, see [`crate::etcd`]: a Txn whose compare failed, an argument
//! etcd refused, a connection never made, and any failed read are `fail`;
//! every other error of a write or cas is `info`.
//!
//! Anything uncertain is `info`, never `fail`: a wrong `fail` would let the
//! checker assume a write never happened and cry wolf when it shows up; a
//! wrong `ok` would hide lost writes.

use faultline_node::client::CallError;
use faultline_node::protocol::ClientResponse;

/// The outcome of one operation, as recorded: `T` is what an ok answer
/// carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Took effect; for a read, what was read.
    Ok(T),
    /// Certainly did not take effect.
    Fail(String),
    /// Unknown.
    Info(String),
}

impl<T> Outcome<T> {
    /// The same outcome with `f` applied to what an ok one carries.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Ok(t) => Outcome::Ok(f(t)),
            Outcome::Fail(e) => Outcome::Fail(e),
            Outcome::Info(e) => Outcome::Info(e),
        }
    }

    /// A borrowed view of it.
    pub fn as_ref(&self) -> Outcome<&T> {
        match self {
            Outcome::Ok(t) => Outcome::Ok(t),
            Outcome::Fail(e) => Outcome::Fail(e.clone()),
            Outcome::Info(e) => Outcome::Info(e.clone()),
        }
    }
}

/// A register operation's outcome: for a read, the value read.
pub type Answer = Outcome<Option<i64>>;

/// A list-append transaction's outcome: per micro-operation, the list read,
/// or none for an append.
pub type TxnAnswer = Outcome<Vec<Option<Vec<i64>>>>;

/// Map a transaction call's result to an outcome (faultline's node).
pub fn classify_txn(result: Result<ClientResponse, CallError>) -> TxnAnswer {
    match result {
        Ok(ClientResponse::Txn(r)) => Outcome::Ok(r),
        Ok(ClientResponse::Error(e)) if e.is_definite() => Outcome::Fail(e.to_string()),
        Ok(ClientResponse::Error(e)) => Outcome::Info(e.to_string()),
        Ok(other) => Outcome::Info(format!(
            "unexpected answer to a transaction: {}",
            other.describe()
        )),
        Err(e) if e.is_definite() => Outcome::Fail(e.to_string()),
        Err(e) => Outcome::Info(e.to_string()),
    }
}

/// Map a client call's result to an outcome.
pub fn classify(result: Result<ClientResponse, CallError>) -> Answer {
    match result {
        Ok(ClientResponse::Ok(v)) => Answer::Ok(v),
        Ok(ClientResponse::CasMismatch { actual }) => Answer::Fail(format!(
            "cas mismatch: the register held {}",
            actual.map_or("null".into(), |v| v.to_string())
        )),
        Ok(ClientResponse::Error(e)) if e.is_definite() => Answer::Fail(e.to_string()),
        Ok(ClientResponse::Error(e)) => Answer::Info(e.to_string()),
        Ok(
            ClientResponse::Status(_)
            | ClientResponse::Members(_)
            | ClientResponse::Changed { .. }
            | ClientResponse::Txn(_),
        ) => Answer::Info("unexpected answer to a register operation".into()),
        Err(e) if e.is_definite() => Answer::Fail(e.to_string()),
        Err(e) => Answer::Info(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_node::protocol::ClientError;

    #[test]
    fn uncertain_outcomes_are_info_never_fail() {
        let addr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(
            classify(Err(CallError::Timeout(addr))),
            Answer::Info(_)
        ));
        assert!(matches!(
            classify(Err(CallError::ConnectionLost(addr))),
            Answer::Info(_)
        ));
        assert!(matches!(
            classify(Ok(ClientResponse::Error(ClientError::Timeout))),
            Answer::Info(_)
        ));
        assert!(matches!(
            classify(Ok(ClientResponse::Error(ClientError::LeadershipLost))),
            Answer::Info(_)
        ));
        assert!(matches!(
            classify(Ok(ClientResponse::Error(ClientError::ShuttingDown))),
            Answer::Info(_)
        ));
        assert!(matches!(
            classify(Ok(ClientResponse::Error(ClientError::NoLeader))),
            Answer::Fail(_)
        ));
        assert!(matches!(
            classify(Ok(ClientResponse::Error(ClientError::NotLeader {
                leader: None
            }))),
            Answer::Fail(_)
        ));
        assert!(matches!(
            classify(Ok(ClientResponse::CasMismatch { actual: Some(1) })),
            Answer::Fail(_)
        ));
        assert_eq!(
            classify(Ok(ClientResponse::Ok(Some(3)))),
            Answer::Ok(Some(3))
        );
        let refused = CallError::Connect {
            addr,
            cause: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert!(matches!(classify(Err(refused)), Answer::Fail(_)));
    }
}
