//! Counters that the capture paths (milter and fallback listener) bump and `lifeboat
//! serve` publishes on its metrics endpoint. They live here, beside the capture logic,
//! because both paths depend on this crate.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Which path a message came by.
pub const MILTER: &str = "milter";
pub const FALLBACK: &str = "fallback";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CaptureLabels {
    /// `milter` or `fallback`.
    pub path: &'static str,
    /// `journal`, `diverted`, `left` (stays with Postfix) or `failed` (could not be
    /// stored; also stays with Postfix).
    pub outcome: &'static str,
}

/// Recipients handled, by path and outcome. Registered by `lifeboat serve`.
pub static CAPTURES: LazyLock<Family<CaptureLabels, Counter>> = LazyLock::new(Family::default);

/// One recipient's outcome on one capture path.
pub fn count_capture(path: &'static str, outcome: &crate::outcome::CaptureOutcome) {
    CAPTURES
        .get_or_create(&CaptureLabels {
            path,
            outcome: outcome.metric_label(),
        })
        .inc();
}
