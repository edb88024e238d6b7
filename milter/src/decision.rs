//! The end-of-message decision: which copies to store and which recipients Postfix may
//! drop. Separate from the milter callbacks so it can be tested without a milter session.

use std::fmt;
use std::sync::Arc;

use lifeboat_mailstore::capture::{PlannedCopy, plan};
use lifeboat_mailstore::class::ID_HEADER;
use lifeboat_mailstore::outcome::{FailedStage, Left};
use lifeboat_mailstore::{Address, CaptureOutcome, Class, Fate, LifeboatId, NewMessage};
use tokio::task::spawn_blocking;

use crate::Milter;
use crate::message::Message;

/// What the milter tells Postfix at end of message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// `X-Lifeboat-ID` to add, when at least one recipient is protected.
    pub lifeboat_id: Option<LifeboatId>,
    /// Recipients (as Postfix named them) whose only copy is now durable in the store.
    pub delete: Vec<String>,
    /// Every recipient was diverted: nothing is left for Postfix to deliver.
    pub all_diverted: bool,
    /// One entry per recipient, for the decision log line.
    pub outcomes: Vec<RecipientOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    pub recipient: String,
    pub outcome: CaptureOutcome,
}

impl fmt::Display for RecipientOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.recipient, self.outcome)
    }
}

/// Decides and stores: diverted copies before returning (their recipients may only leave
/// Postfix once the copy is durable), journal copies queued for the background writer.
/// Never fails: whatever goes wrong leaves the recipient with Postfix, which is always
/// safe (journal failures never reject or delay mail).
///
/// All of the message's store work (classify, queue journal copies, store diverted
/// copies) runs in one call on one blocking thread: one hand-off per message.
pub async fn decide(milter: Arc<Milter>, message: Message) -> (Decision, Message) {
    let recipients = message.recipients.len();
    match spawn_blocking(move || (decide_now(&milter, &message), message)).await {
        Ok(decided) => decided,
        // The task panicked: nothing was removed from Postfix, and the message is gone
        // with the task, so only the recipient count is left to log.
        Err(e) => {
            let outcome = RecipientOutcome {
                recipient: "-".into(),
                outcome: CaptureOutcome::Failed {
                    stage: FailedStage::Internal,
                    error: e.to_string(),
                },
            };
            let decision = Decision {
                outcomes: vec![outcome; recipients],
                ..Decision::default()
            };
            (decision, Message::default())
        }
    }
}

/// [`decide`], on the calling thread (it blocks on the store).
pub fn decide_now(milter: &Milter, message: &Message) -> Decision {
    let settings = milter.settings();
    let mut outcomes: Vec<Option<CaptureOutcome>> = vec![None; message.recipients.len()];
    // Recipients Lifeboat might capture, with their index in `message.recipients`.
    let candidates: Vec<(usize, Address)> = message
        .recipients
        .iter()
        .enumerate()
        .filter_map(|(i, rcpt)| {
            if rcpt.is_dropped_by_postfix() {
                let mailer = rcpt.mailer.as_deref().unwrap_or("-").to_string();
                outcomes[i] = Some(CaptureOutcome::Left(Left::DroppedByPostfix(mailer)));
                return None;
            }
            match &rcpt.address {
                Some(address) => Some((i, address.clone())),
                None => {
                    outcomes[i] = Some(CaptureOutcome::Left(Left::Unparsable));
                    None
                }
            }
        })
        .collect();
    let addresses: Vec<Address> = candidates.iter().map(|(_, a)| a.clone()).collect();
    let fates = match milter.store().classify(&settings.routes, &addresses) {
        Ok(fates) => fates,
        Err(e) => {
            let failed = CaptureOutcome::Failed {
                stage: FailedStage::Index,
                error: e.to_string(),
            };
            return finish(
                message,
                None,
                Vec::new(),
                vec![Some(failed); outcomes.len()],
            );
        }
    };
    for ((i, _), fate) in candidates.iter().zip(&fates) {
        outcomes[*i] = match fate {
            Fate::Capture { .. } => None,
            other => Some(CaptureOutcome::Left(Left::NotCaptured(other.as_str()))),
        };
    }
    let copies = plan(&fates);
    if copies.is_empty() {
        return finish(message, None, Vec::new(), outcomes);
    }
    if message.oversize {
        for copy in &copies {
            for &c in &copy.recipients {
                outcomes[candidates[c].0] = Some(CaptureOutcome::Left(Left::TooBig {
                    max: settings.max_message_size,
                }));
            }
        }
        return finish(message, None, Vec::new(), outcomes);
    }

    let lifeboat_id = milter.store().keyring().new_lifeboat_id();
    let content = message.content_with(&[(ID_HEADER, lifeboat_id.as_str())]);
    let new_copy = |copy: &PlannedCopy| {
        let mut new = NewMessage::new(copy.owner.clone(), "INBOX", content.clone(), copy.class);
        new.envelope_from = Some(message.sender.clone());
        new.envelope_to = copy
            .recipients
            .iter()
            .map(|&c| candidates[c].1.clone())
            .collect();
        new.lifeboat_id = Some(lifeboat_id.clone());
        new.queue_id = message.queue_id.clone();
        new
    };
    // Journal copies are queued and written in the background: they never delay mail.
    for copy in copies.iter().filter(|c| c.class != Class::Diverted) {
        let outcome = if milter.journal.push(new_copy(copy)) {
            CaptureOutcome::Journal
        } else {
            CaptureOutcome::JournalSkipped
        };
        for &c in &copy.recipients {
            outcomes[candidates[c].0] = Some(outcome.clone());
        }
    }
    // Diverted copies must be durable before their recipients leave Postfix. Stored
    // together so their index rows share a group commit.
    let diverted: Vec<&PlannedCopy> = copies
        .iter()
        .filter(|c| c.class == Class::Diverted)
        .collect();
    let stored = milter
        .store()
        .deliver_all(diverted.iter().map(|copy| new_copy(copy)).collect());
    let mut delete = Vec::new();
    for (copy, result) in diverted.into_iter().zip(stored) {
        for &c in &copy.recipients {
            let index = candidates[c].0;
            outcomes[index] = Some(match &result {
                Ok(stored) => {
                    delete.push(message.recipients[index].raw.clone());
                    CaptureOutcome::Diverted { uid: stored.uid }
                }
                Err(e) => CaptureOutcome::Failed {
                    stage: FailedStage::Store,
                    error: e.to_string(),
                },
            });
        }
    }
    finish(message, Some(lifeboat_id), delete, outcomes)
}

fn finish(
    message: &Message,
    lifeboat_id: Option<LifeboatId>,
    delete: Vec<String>,
    outcomes: Vec<Option<CaptureOutcome>>,
) -> Decision {
    let outcomes = message
        .recipients
        .iter()
        .zip(outcomes)
        .map(|(rcpt, outcome)| RecipientOutcome {
            recipient: rcpt.raw.clone(),
            // Every captured recipient belongs to a planned copy, so this is only a
            // safety net: nothing stored, Postfix delivers.
            outcome: outcome.unwrap_or(CaptureOutcome::Left(Left::NotCaptured("unplanned"))),
        })
        .collect();
    let all_diverted = !message.recipients.is_empty() && delete.len() == message.recipients.len();
    Decision {
        lifeboat_id,
        delete,
        all_diverted,
        outcomes,
    }
}
