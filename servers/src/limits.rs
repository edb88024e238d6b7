//! Connection limits for the user-facing servers: per client address and in total.
//! A [`ConnectionSlot`] holds a place until it is dropped, so a session that ends in any
//! way (error, timeout, panic) gives its place back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

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
}

impl ConnectionCounter {
    pub fn new(limits: ConnectionLimits) -> ConnectionCounter {
        ConnectionCounter {
            limits,
            counts: Arc::default(),
        }
    }

    /// Takes a place for a connection from `ip`, or says which limit is reached.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.limits.total {
            return Err(Refusal::TooManyInTotal);
        }
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.limits.per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(ConnectionSlot {
            ip,
            counts: self.counts.clone(),
        })
    }

    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

pub struct ConnectionSlot {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
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
}
