//! What became of one recipient at capture, as a type: both capture paths log it on
//! their decision line and count it in `lifeboat_captures_total`.

use std::fmt;

use crate::capture::DivertOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureOutcome {
    /// Postfix delivers as usual and Lifeboat keeps nothing, for this reason.
    Left(Left),
    /// A journal copy was handed to the background writer.
    Journal,
    /// The journal queue was full: no copy (Postfix delivers as usual).
    JournalSkipped,
    /// The only copy is durable in the store; Postfix may drop the recipient.
    Diverted { uid: u32 },
    /// The fallback listener turned this message's journal copy into the diverted one.
    UpgradedJournal { uid: u32 },
    /// The fallback listener was handed a message whose diverted copy is stored.
    AlreadyDiverted,
    /// Storing failed at this stage: the recipient stays with Postfix.
    Failed { stage: FailedStage, error: String },
}

/// Why a recipient is left to Postfix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Left {
    /// Postfix itself drops it (e.g. `discard`, `error`): named by its mailer.
    DroppedByPostfix(String),
    Unparsable,
    /// The store's verdict (`unprotected`, `inactive`, `other-domain`).
    NotCaptured(&'static str),
    TooBig {
        max: u64,
    },
    /// The fallback listener refused it with a 4xx (it stays in Postfix's queue).
    Refused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedStage {
    /// The index could not be read to classify the recipients.
    Index,
    /// The task deciding the message failed.
    Internal,
    /// The copy could not be stored.
    Store,
}

impl CaptureOutcome {
    /// From the store's answer to a diverted delivery.
    pub fn of_divert(result: crate::Result<DivertOutcome>) -> CaptureOutcome {
        match result {
            Ok(DivertOutcome::Stored(stored)) => CaptureOutcome::Diverted { uid: stored.uid },
            Ok(DivertOutcome::Upgraded(stored)) => {
                CaptureOutcome::UpgradedJournal { uid: stored.uid }
            }
            Ok(DivertOutcome::AlreadyDiverted) => CaptureOutcome::AlreadyDiverted,
            Err(e) => CaptureOutcome::Failed {
                stage: FailedStage::Store,
                error: e.to_string(),
            },
        }
    }

    /// The `outcome` label of `lifeboat_captures_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CaptureOutcome::Left(_) => "left",
            CaptureOutcome::Journal => "journal",
            CaptureOutcome::Diverted { .. }
            | CaptureOutcome::UpgradedJournal { .. }
            | CaptureOutcome::AlreadyDiverted => "diverted",
            CaptureOutcome::JournalSkipped | CaptureOutcome::Failed { .. } => "failed",
        }
    }

    /// Whether the message is durable in the store for this recipient.
    pub fn is_diverted(&self) -> bool {
        self.metric_label() == "diverted"
    }
}

/// The form on the decision log line, e.g. `diverted(uid 12)`, `left:other-domain`.
impl fmt::Display for CaptureOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureOutcome::Left(Left::DroppedByPostfix(mailer)) => write!(f, "left:{mailer}"),
            CaptureOutcome::Left(Left::Unparsable) => f.write_str("left:unparsable"),
            CaptureOutcome::Left(Left::NotCaptured(fate)) => write!(f, "left:{fate}"),
            CaptureOutcome::Left(Left::TooBig { max }) => {
                write!(f, "left:too-big(max {max} bytes)")
            }
            CaptureOutcome::Left(Left::Refused) => f.write_str("left:refused"),
            CaptureOutcome::Journal => f.write_str("journal(queued)"),
            CaptureOutcome::JournalSkipped => f.write_str("forwarded:journal-skipped(queue full)"),
            CaptureOutcome::Diverted { uid } => write!(f, "diverted(uid {uid})"),
            CaptureOutcome::UpgradedJournal { uid } => write!(f, "upgraded-journal(uid {uid})"),
            CaptureOutcome::AlreadyDiverted => f.write_str("already-diverted"),
            CaptureOutcome::Failed { stage, error } => {
                let stage = match stage {
                    FailedStage::Index => "index-error",
                    FailedStage::Internal => "internal-error",
                    FailedStage::Store => "divert-failed",
                };
                write!(f, "left:{stage}({error})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_log_forms() {
        let cases = [
            (CaptureOutcome::Journal, "journal", "journal(queued)"),
            (
                CaptureOutcome::Diverted { uid: 3 },
                "diverted",
                "diverted(uid 3)",
            ),
            (
                CaptureOutcome::Left(Left::NotCaptured("other-domain")),
                "left",
                "left:other-domain",
            ),
            (
                CaptureOutcome::Failed {
                    stage: FailedStage::Store,
                    error: "disk full".into(),
                },
                "failed",
                "left:divert-failed(disk full)",
            ),
            (
                CaptureOutcome::JournalSkipped,
                "failed",
                "forwarded:journal-skipped(queue full)",
            ),
        ];
        for (outcome, label, text) in cases {
            assert_eq!(outcome.metric_label(), label);
            assert_eq!(outcome.to_string(), text);
        }
    }
}
