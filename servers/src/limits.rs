//! Connection limits for the user-facing servers: per client, per server, and for all
//! of them together (the process's share of file descriptors, see [`set_session_budget`]).
//! A [`ConnectionSlot`] holds a place until it is dropped, so a session that ends in any
//! way (error, timeout, panic) gives its place back.
//!
//! A client is an IPv4 address or an IPv6 /64: one host usually holds a whole /64, so
//! counting single IPv6 addresses would give it billions of places.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Sessions every user-facing server may hold together; unlimited until `serve` sets it
/// from the descriptor budget.
static SESSION_BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static SESSIONS_OPEN: AtomicUsize = AtomicUsize::new(0);

/// Sets how many sessions all user-facing servers may hold together, so the milter and
/// the fallback listener always find a descriptor (issue: capture died when IMAP
/// clients had taken them all).
pub fn set_session_budget(sessions: usize) {
    SESSION_BUDGET.store(sessions, Ordering::Relaxed);
}

/// Sessions open in all user-facing servers together.
pub fn sessions_open() -> usize {
    SESSIONS_OPEN.load(Ordering::Relaxed)
}

/// The unit connection limits count: the address, or the /64 of an IPv6 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub per_ip: usize,
    pub total: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyFromAddress,
    TooManyInTotal,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections; cheap to clone (shared counts).
#[derive(Clone)]
pub struct ConnectionCounter {
    limits: ConnectionLimits,
    counts: Arc<Mutex<Counts>>,
    /// Whether its connections draw on the budget the user-facing servers share.
    budgeted: bool,
}

impl ConnectionCounter {
    /// For a user-facing server: also within the shared session budget.
    pub fn new(limits: ConnectionLimits) -> ConnectionCounter {
        ConnectionCounter {
            limits,
            counts: Arc::default(),
            budgeted: true,
        }
    }

    /// For capture (the fallback listener), which has a share of its own: users taking
    /// every session they may never turn Postfix away.
    pub fn outside_budget(limits: ConnectionLimits) -> ConnectionCounter {
        ConnectionCounter {
            budgeted: false,
            ..ConnectionCounter::new(limits)
        }
    }

    /// Takes a place for a connection from `ip`, or says which limit is reached.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let ip = client_key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.limits.total {
            return Err(Refusal::TooManyInTotal);
        }
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.limits.per_ip {
            if *from_ip == 0 {
                counts.per_ip.remove(&ip);
            }
            return Err(Refusal::TooManyFromAddress);
        }
        if self.budgeted
            && SESSIONS_OPEN.fetch_add(1, Ordering::Relaxed)
                >= SESSION_BUDGET.load(Ordering::Relaxed)
        {
            SESSIONS_OPEN.fetch_sub(1, Ordering::Relaxed);
            if *from_ip == 0 {
                counts.per_ip.remove(&ip);
            }
            return Err(Refusal::TooManyInTotal);
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(ConnectionSlot {
            ip,
            counts: self.counts.clone(),
            budgeted: self.budgeted,
        })
    }

    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

pub struct ConnectionSlot {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
    budgeted: bool,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if self.budgeted {
            SESSIONS_OPEN.fetch_sub(1, Ordering::Relaxed);
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_in_total_and_gives_places_back() {
        let counter = ConnectionCounter::new(ConnectionLimits {
            per_ip: 2,
            total: 3,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = counter.admit(a).unwrap();
        let _second = counter.admit(a).unwrap();
        assert_eq!(counter.admit(a).err(), Some(Refusal::TooManyFromAddress));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            counter.admit(mapped).err(),
            Some(Refusal::TooManyFromAddress)
        );
        let _third = counter.admit(b).unwrap();
        assert_eq!(counter.admit(b).err(), Some(Refusal::TooManyInTotal));
        drop(first);
        let _again = counter.admit(a).unwrap();
        assert_eq!(counter.open(), 3);
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let counter = ConnectionCounter::new(ConnectionLimits {
            per_ip: 2,
            total: 100,
        });
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_host_same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().unwrap();
        let next_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _a = counter.admit(one).unwrap();
        let _b = counter.admit(other_host_same_64).unwrap();
        assert_eq!(
            counter.admit("2001:db8:1:2::99".parse().unwrap()).err(),
            Some(Refusal::TooManyFromAddress)
        );
        let _c = counter.admit(next_64).unwrap();
        assert_eq!(client_key(one), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn refused_clients_leave_no_entry_behind() {
        let counter = ConnectionCounter::new(ConnectionLimits {
            per_ip: 0,
            total: 100,
        });
        for i in 0..1000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(counter.admit(ip).is_err());
        }
        assert!(counter.counts.lock().unwrap().per_ip.is_empty());
    }
}
