//! What a running `serve` reports about itself for `lifeboat status`, which runs in
//! another process: its listeners' health and its descriptor budget, written to
//! `data_dir/serve-status.json` every few seconds (written aside, then renamed, so a
//! reader never sees half a file).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub const FILE: &str = "serve-status.json";
/// How often `serve` rewrites the file; a file older than a few of these means `serve`
/// is not running (or hangs).
pub const INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServeReport {
    pub pid: u32,
    /// Seconds since the epoch.
    pub updated_at: u64,
    pub descriptor_limit: u64,
    pub session_budget: usize,
    pub sessions_open: usize,
    pub listeners: Vec<ListenerReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListenerReport {
    pub kind: String,
    pub address: String,
    pub accepted: u64,
    pub accept_errors: u64,
    pub stopped: bool,
    pub last_error_at: Option<u64>,
    pub last_error: Option<String>,
}

impl From<lifeboat_servers::health::Report> for ListenerReport {
    fn from(report: lifeboat_servers::health::Report) -> ListenerReport {
        let (last_error_at, last_error) = match report.last_error {
            Some((at, why)) => (Some(at), Some(why)),
            None => (None, None),
        };
        ListenerReport {
            kind: report.kind.to_string(),
            address: report.address,
            accepted: report.accepted,
            accept_errors: report.accept_errors,
            stopped: report.stopped,
            last_error_at,
            last_error,
        }
    }
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl ServeReport {
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let path = path(data_dir);
        let partial = path.with_extension("json.partial");
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &path)
    }

    /// The report of a `serve` that looks alive: the file is fresh and its process
    /// exists. `None` otherwise.
    pub fn read_live(data_dir: &Path) -> Option<ServeReport> {
        let text = std::fs::read(path(data_dir)).ok()?;
        let report: ServeReport = serde_json::from_slice(&text).ok()?;
        let fresh = now().saturating_sub(report.updated_at) <= 3 * INTERVAL.as_secs();
        let alive = Path::new(&format!("/proc/{}", report.pid)).exists();
        (fresh && alive).then_some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(updated_at: u64, pid: u32) -> ServeReport {
        ServeReport {
            pid,
            updated_at,
            descriptor_limit: 1024,
            session_budget: 288,
            sessions_open: 3,
            listeners: vec![ListenerReport {
                kind: "milter".into(),
                address: "inet:127.0.0.1:8891".into(),
                accepted: 10,
                accept_errors: 1,
                stopped: false,
                last_error_at: Some(updated_at),
                last_error: Some("Too many open files (os error 24)".into()),
            }],
        }
    }

    #[test]
    fn a_fresh_report_of_a_live_process_is_read_back_and_a_stale_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let live = report(now(), std::process::id());
        live.write(dir.path()).unwrap();
        assert_eq!(ServeReport::read_live(dir.path()), Some(live));
        report(now() - 3600, std::process::id())
            .write(dir.path())
            .unwrap();
        assert_eq!(ServeReport::read_live(dir.path()), None);
        report(now(), u32::MAX - 1).write(dir.path()).unwrap();
        assert_eq!(ServeReport::read_live(dir.path()), None);
    }
}
