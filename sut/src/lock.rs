//! Locks with leases, for the lock workload (`--workload lock`): what a
//! client of each system does to take a lock, keep it, give it back, and
//! write the register the lock protects — plainly, or fenced by the lock's
//! token.
//!
//! The default ([`KvClient`]'s provided methods) builds the lock from the
//! system's own compare-and-set, as one would on a plain key-value store:
//! the lock's register holds `token << 40 | expiry`, the expiry in ms on
//! the clients' shared clock (this machine's; 0: free). To acquire, a
//! client reads it; if it is free or expired it sets the next token with
//! its own expiry by a cas (else it retries until its deadline). The
//! holder renews by a cas of the same token with a later expiry; it
//! releases by a cas to expiry 0. A fenced write reads the protected
//! register (`token << 32 | n`) and sets it by a cas only when its own
//! token is no lower than the token there — a holder whose lease expired
//! and whose lock was taken can no longer overwrite a newer holder's
//! writes. etcd overrides all of it with its own lock API ([`crate::etcd`]).

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::{Answer, KvClient, KvOp, Outcome};

/// The most a lock register's expiry can say (ms; 40 bits).
const EXPIRY_MASK: i64 = (1 << 40) - 1;

/// A lock a client holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The lock.
    pub lock: String,
    /// The fencing token: higher for every later holder of the lock.
    pub token: i64,
    /// What the system needs to renew or release it.
    pub handle: Handle,
}

/// How a held lock is named to its system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handle {
    /// The cas lock: the register's value now.
    Cas(i64),
    /// etcd: the lease and the lock's ownership key.
    Etcd {
        /// The lease's id.
        lease: i64,
        /// The ownership key (`lock/<lease hex>`).
        key: String,
    },
}

/// The register a lock's value lives in (the cas lock): the lock's own
/// name, which the history does not use as a register.
pub fn lock_register(lock: &str) -> String {
    format!("{lock}.lock")
}

fn token_of(v: i64) -> i64 {
    v >> 40
}

fn expiry_of(v: i64) -> i64 {
    v & EXPIRY_MASK
}

fn lock_value(token: i64, expiry_ms: u64) -> i64 {
    (token << 40) | (expiry_ms as i64 & EXPIRY_MASK)
}

/// Make the cas lock's register exist (0: free, token 0); nothing when it
/// does already.
pub fn prepare_cas<'a, C: KvClient + ?Sized>(
    c: &'a C,
    lock: &'a str,
) -> BoxFuture<'a, Result<(), String>> {
    async move {
        let reg = lock_register(lock);
        match c.call(&KvOp::Read(reg.clone())).await {
            Outcome::Ok(Some(_)) => Ok(()),
            Outcome::Ok(None) => match c.call(&KvOp::Write(reg, 0)).await {
                Outcome::Ok(_) => Ok(()),
                Outcome::Fail(e) | Outcome::Info(e) => Err(e),
            },
            Outcome::Fail(e) | Outcome::Info(e) => Err(e),
        }
    }
    .boxed()
}

/// Acquire by the cas lock (see the module's notes), polling until
/// `deadline_ms` on the shared clock `now`.
pub fn acquire_cas<'a, C: KvClient + ?Sized>(
    c: &'a C,
    lock: &'a str,
    ttl: Duration,
    now: &'a (dyn Fn() -> u64 + Send + Sync),
    deadline_ms: u64,
) -> BoxFuture<'a, Outcome<Held>> {
    async move {
        let reg = lock_register(lock);
        loop {
            let v = match c.call(&KvOp::Read(reg.clone())).await {
                Outcome::Ok(Some(v)) => v,
                Outcome::Ok(None) => {
                    return Outcome::Fail(format!("the lock register {reg} does not exist"))
                }
                Outcome::Fail(e) | Outcome::Info(e) => return Outcome::Fail(e),
            };
            let t = now();
            if expiry_of(v) != 0 && expiry_of(v) as u64 > t {
                if t >= deadline_ms {
                    return Outcome::Fail(format!(
                        "held by another client (token {}) until the deadline",
                        token_of(v)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let token = token_of(v) + 1;
            let mine = lock_value(token, t + ttl.as_millis() as u64);
            match c.call(&KvOp::Cas(reg.clone(), v, mine)).await {
                Outcome::Ok(_) => {
                    return Outcome::Ok(Held {
                        lock: lock.to_string(),
                        token,
                        handle: Handle::Cas(mine),
                    })
                }
                // Another client changed it first: nothing of ours is there.
                Outcome::Fail(_) if now() < deadline_ms => continue,
                Outcome::Fail(e) => return Outcome::Fail(e),
                Outcome::Info(e) => return Outcome::Info(e),
            }
        }
    }
    .boxed()
}

/// Renew by the cas lock: `Ok` with the lease extended, `Err` when the
/// lock is no longer this holder's (or the renewal's fate is unknown).
pub fn renew_cas<'a, C: KvClient + ?Sized>(
    c: &'a C,
    held: &'a mut Held,
    ttl: Duration,
    now_ms: u64,
) -> BoxFuture<'a, Result<(), String>> {
    async move {
        let Handle::Cas(current) = held.handle else {
            return Err("not a cas lock".into());
        };
        let next = lock_value(held.token, now_ms + ttl.as_millis() as u64);
        match c
            .call(&KvOp::Cas(lock_register(&held.lock), current, next))
            .await
        {
            Outcome::Ok(_) => {
                held.handle = Handle::Cas(next);
                Ok(())
            }
            Outcome::Fail(e) | Outcome::Info(e) => Err(e),
        }
    }
    .boxed()
}

/// Release by the cas lock: a cas to expiry 0 (`fail` when the lock is no
/// longer this holder's).
pub fn release_cas<'a, C: KvClient + ?Sized>(c: &'a C, held: &'a Held) -> BoxFuture<'a, Answer> {
    async move {
        let Handle::Cas(current) = held.handle else {
            return Answer::Fail("not a cas lock".into());
        };
        match c
            .call(&KvOp::Cas(
                lock_register(&held.lock),
                current,
                lock_value(held.token, 0),
            ))
            .await
        {
            Outcome::Ok(_) => Answer::Ok(None),
            Outcome::Fail(e) if e.starts_with("cas mismatch") => {
                Answer::Fail(format!("not the holder any more: {e}"))
            }
            Outcome::Fail(e) => Answer::Fail(e),
            Outcome::Info(e) => Answer::Info(e),
        }
    }
    .boxed()
}

/// A fenced write by cas (see the module's notes): `fail` when the
/// protected register holds a higher token's value.
pub fn fenced_write_cas<'a, C: KvClient + ?Sized>(
    c: &'a C,
    key: &'a str,
    held: &'a Held,
    value: i64,
) -> BoxFuture<'a, Answer> {
    async move {
        for _ in 0..10 {
            let current = match c.call(&KvOp::Read(key.to_string())).await {
                Outcome::Ok(Some(v)) => v,
                Outcome::Ok(None) => {
                    return Answer::Fail(format!("the protected register {key} does not exist"))
                }
                Outcome::Fail(e) | Outcome::Info(e) => return Answer::Fail(e),
            };
            if current >> 32 > held.token {
                return Answer::Fail(format!(
                    "fenced: the register holds token {}'s write, newer than token {}",
                    current >> 32,
                    held.token
                ));
            }
            match c.call(&KvOp::Cas(key.to_string(), current, value)).await {
                Outcome::Ok(_) => return Answer::Ok(None),
                Outcome::Fail(_) => continue,
                Outcome::Info(e) => return Answer::Info(e),
            }
        }
        Answer::Fail(format!(
            "the protected register {key} kept changing under the fenced write"
        ))
    }
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_value_keeps_its_token_and_expiry_apart() {
        let v = lock_value(7, 123_456);
        assert_eq!((token_of(v), expiry_of(v)), (7, 123_456));
        assert_eq!(expiry_of(lock_value(7, 0)), 0);
        assert!(lock_value(8, 1) > lock_value(7, EXPIRY_MASK as u64));
    }
}
