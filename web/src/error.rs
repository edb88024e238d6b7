//! What a handler can fail with, and the page each failure shows. Another user's
//! folder, message or part, and ids that do not parse, are all "not found": the portal
//! never says that something exists but is not yours.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::pages::{ErrorPage, render};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    /// A state-changing form without this session's token.
    #[error("the form expired or came from elsewhere")]
    BadToken,
    #[error("{0}")]
    BadRequest(String),
    /// An upload over `[milter] max_message_size`.
    #[error("too large")]
    TooLarge,
    /// The store or another part failed; the detail is logged, not shown.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<lifeboat_mailstore::Error> for PageError {
    fn from(e: lifeboat_mailstore::Error) -> PageError {
        PageError::Internal(e.to_string())
    }
}

impl From<tokio::task::JoinError> for PageError {
    fn from(e: tokio::task::JoinError) -> PageError {
        PageError::Internal(e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, detail) = match &self {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here. It may have been moved or deleted.".to_string(),
            ),
            PageError::BadToken => (
                StatusCode::FORBIDDEN,
                "Please try again",
                "This form expired or did not come from this site. Go back, reload the page and try again.".to_string(),
            ),
            PageError::BadRequest(why) => (StatusCode::BAD_REQUEST, "That did not work", why.clone()),
            PageError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The message with its attachments is larger than this server accepts. Nothing was sent or saved.".to_string(),
            ),
            PageError::Internal(why) => {
                tracing::error!(error = %why, "web: request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not do that just now. Please try again in a moment.".to_string(),
                )
            }
        };
        let mut response = render(&ErrorPage {
            title: title.to_string(),
            detail,
        });
        *response.status_mut() = status;
        response
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;
