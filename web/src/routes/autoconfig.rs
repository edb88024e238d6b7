//! Autoconfiguration served by the portal's listener: Thunderbird's
//! `/.well-known/autoconfig/mail/config-v1.1.xml` and `/mail/config-v1.1.xml`
//! (`?emailaddress=`), Outlook's `POST /autodiscover/autodiscover.xml`, and the Apple
//! profile of the logged-in user. Only protected domains get an answer.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::App;
use crate::clientconfig;
use crate::error::{PageError, PageResult};
use crate::session::LoggedIn;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AutoconfigQuery {
    emailaddress: Option<String>,
}

fn xml_response(body: String, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The protected domain an address (or the only protected domain) names.
fn domain_for(app: &App, address: Option<&str>) -> Option<String> {
    let settings = app.settings.get();
    match address {
        Some(address) => {
            let domain = address.rsplit_once('@')?.1.trim().to_ascii_lowercase();
            settings.domains.iter().find(|d| **d == domain).cloned()
        }
        None => settings.domains.first().cloned(),
    }
}

pub async fn thunderbird(
    State(app): State<Arc<App>>,
    Query(query): Query<AutoconfigQuery>,
) -> PageResult {
    let domain = domain_for(&app, query.emailaddress.as_deref()).ok_or(PageError::NotFound)?;
    let settings = app.settings.get();
    let body = clientconfig::thunderbird(settings.hostname(), &domain, &settings.ports);
    Ok(xml_response(body, "application/xml; charset=utf-8"))
}

pub async fn outlook(State(app): State<Arc<App>>, body: String) -> PageResult {
    let address = clientconfig::outlook_request_address(&body)
        .ok_or_else(|| PageError::BadRequest("No EMailAddress in the request.".into()))?;
    domain_for(&app, Some(&address)).ok_or(PageError::NotFound)?;
    let settings = app.settings.get();
    let body = clientconfig::outlook(settings.hostname(), &address, &settings.ports);
    Ok(xml_response(body, "application/xml; charset=utf-8"))
}

pub async fn mobileconfig(State(app): State<Arc<App>>, logged: LoggedIn) -> PageResult {
    let settings = app.settings.get();
    let profile = clientconfig::mobileconfig(
        settings.hostname(),
        logged.user.address.as_str(),
        &settings.ports,
    )
    .ok_or(PageError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-apple-aspen-config"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"lifeboat.mobileconfig\"",
            ),
        ],
        profile,
    )
        .into_response())
}
