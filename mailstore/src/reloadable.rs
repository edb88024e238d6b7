//! Settings a running server reads on every request and replaces whole on SIGHUP.

use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub struct Reloadable<T>(RwLock<Arc<T>>);

impl<T> Reloadable<T> {
    pub fn new(value: T) -> Reloadable<T> {
        Reloadable(RwLock::new(Arc::new(value)))
    }

    /// The current value; a reload does not change it under the caller.
    pub fn get(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies to every request that starts from now on.
    pub fn replace(&self, value: T) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
    }
}
