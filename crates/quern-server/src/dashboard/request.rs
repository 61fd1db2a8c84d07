//! What an API request carries, read and checked before anything runs:
//! the queue in its path, a job id, query parameters and an action's JSON
//! body. Anything wrong is an [`ApiError`]: a 4xx status with a JSON
//! `{"error": "…"}` that says what, never a panic.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use quern_engine::JobId;
use serde::Deserialize;

use super::MAX_IDS_PER_ACTION;
use crate::error::CmdError;

/// Ids above this cannot be read exactly by JavaScript; the server never
/// hands them out (SPEC: ids are below 2^53).
const MAX_JOB_ID: u64 = (1 << 53) - 1;

/// A refused or failed API request: its status and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404: no such queue, job or route.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 500: the store failed to read or commit.
    pub fn store(error: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("store: {error}"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// The queue named by the request's path (`/api/queues/{name}/…` or
/// `/queues/{name}`), as bytes.
///
/// Read from the raw path rather than through axum's `Path`, which
/// decodes to UTF-8 and refuses anything else: a queue name is any bytes,
/// and its percent-encoding carries them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueName(pub Bytes);

impl<S: Send + Sync> FromRequestParts<S> for QueueName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<QueueName, ApiError> {
        queue_in_path(parts.uri.path()).map(QueueName)
    }
}

/// The queue name in `path`: the percent-decoded segment after `queues/`.
fn queue_in_path(path: &str) -> Result<Bytes, ApiError> {
    let after = path
        .split_once("queues/")
        .map(|(_, rest)| rest)
        .ok_or_else(|| ApiError::bad_request("no queue in the path"))?;
    let segment = after.split('/').next().unwrap_or_default();
    let name: Vec<u8> = percent_decode_str(segment).collect();
    match crate::commands::check_queue_name(&name) {
        Ok(()) => Ok(Bytes::from(name)),
        Err(CmdError::Invalid(why)) => Err(ApiError::bad_request(why)),
        Err(other) => Err(ApiError::bad_request(other.to_string())),
    }
}

/// A job id as written in a path: a positive decimal integer below 2^53.
pub fn job_id(text: &str) -> Result<JobId, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid job id '{text}': a positive integer below 2^53"));
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<u64>() {
        Ok(id) if (1..=MAX_JOB_ID).contains(&id) => Ok(id),
        _ => Err(bad()),
    }
}

/// A request's query parameters, each known name at most once.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses `query` (without the `?`), refusing a name not in `known`
    /// or given twice.
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Query, ApiError> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if !known.contains(&name.as_ref()) {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter '{name}' (known: {})",
                    known.join(", ")
                )));
            }
            if params.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(ApiError::bad_request(format!("parameter '{name}' given twice")));
            }
        }
        Ok(Query(params))
    }

    /// Parameter `name` as an integer in `min..=max`; `default` when absent.
    pub fn number(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        let Some(text) = self.0.get(name) else {
            return Ok(default);
        };
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) && !text.starts_with('+') => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "parameter '{name}' must be an integer from {min} to {max}, not '{text}'"
            ))),
        }
    }

    /// Parameter `name` as text, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Which dead jobs an action is for: the body of `…/dead/requeue` and
/// `…/dead/purge`. "All" must be said (`{"all": true}`), never implied by
/// an empty or missing list, so that a mistake cannot empty a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Which {
    /// These ids; ids not dead in the queue are skipped.
    Ids(Vec<JobId>),
    /// Every dead job of the queue.
    All,
}

impl Which {
    /// `None` for every job, as the engine takes it.
    pub fn ids(&self) -> Option<&[JobId]> {
        match self {
            Which::Ids(ids) => Some(ids),
            Which::All => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhichBody {
    #[serde(default)]
    ids: Option<Vec<u64>>,
    #[serde(default)]
    all: Option<bool>,
}

/// Reads an action's body: `{"ids": [1, 2]}` or `{"all": true}`.
pub fn which(body: &[u8]) -> Result<Which, ApiError> {
    let parsed: WhichBody =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    match (parsed.ids, parsed.all) {
        (None, Some(true)) => Ok(Which::All),
        (Some(ids), None | Some(false)) => {
            if ids.is_empty() || ids.len() > MAX_IDS_PER_ACTION {
                return Err(ApiError::bad_request(format!(
                    "\"ids\" must list 1 to {MAX_IDS_PER_ACTION} job ids"
                )));
            }
            if let Some(bad) = ids.iter().find(|id| !(1..=MAX_JOB_ID).contains(*id)) {
                return Err(ApiError::bad_request(format!(
                    "invalid job id {bad}: a positive integer below 2^53"
                )));
            }
            Ok(Which::Ids(ids))
        }
        _ => Err(ApiError::bad_request(
            "the body must be {\"ids\": [id, ...]} or {\"all\": true}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_name_is_any_bytes_percent_encoded() {
        assert_eq!(queue_in_path("/api/queues/emails").unwrap(), "emails");
        assert_eq!(queue_in_path("/api/queues/emails/dead/purge").unwrap(), "emails");
        assert_eq!(queue_in_path("/queues/a%2Fb").unwrap(), "a/b");
        assert_eq!(queue_in_path("/queues/caf%C3%A9").unwrap(), "café");
        assert_eq!(queue_in_path("/queues/%FF%FE").unwrap(), &b"\xff\xfe"[..]);
    }

    #[test]
    fn a_queue_name_breaking_the_rules_is_a_bad_request() {
        for path in ["/queues/", "/queues/a%20b", "/queues/a%0Ab", "/nothing"] {
            let e = queue_in_path(path).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{path}");
        }
        let long = format!("/queues/{}", "x".repeat(201));
        assert!(queue_in_path(&long)
            .unwrap_err()
            .message
            .contains("1 to 200 bytes"));
        assert!(queue_in_path(&format!("/queues/{}", "x".repeat(200))).is_ok());
    }

    #[test]
    fn job_ids_are_positive_and_below_2_pow_53() {
        assert_eq!(job_id("7"), Ok(7));
        assert_eq!(job_id("9007199254740991"), Ok(9007199254740991));
        for bad in [
            "0",
            "",
            "-1",
            "+1",
            "1.5",
            "x",
            "9007199254740992",
            "99999999999999999999",
        ] {
            assert_eq!(job_id(bad).unwrap_err().status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn query_parameters_are_known_bounded_and_once() {
        let q = Query::parse(Some("limit=20&filter=a%20b"), &["limit", "filter", "offset"]).unwrap();
        assert_eq!(q.number("limit", 50, 1, 500), Ok(20));
        assert_eq!(q.number("offset", 0, 0, 10), Ok(0));
        assert_eq!(q.text("filter"), Some("a b"));
        assert!(Query::parse(Some("limit=1&limit=2"), &["limit"]).is_err());
        assert!(Query::parse(Some("lmit=1"), &["limit"]).is_err());
        for bad in ["0", "501", "-1", "x", "+5", ""] {
            let q = Query::parse(Some(&format!("limit={bad}")), &["limit"]).unwrap();
            assert!(q.number("limit", 50, 1, 500).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_action_names_its_ids_or_says_all() {
        assert_eq!(which(br#"{"ids":[3,1]}"#), Ok(Which::Ids(vec![3, 1])));
        assert_eq!(which(br#"{"all":true}"#), Ok(Which::All));
        for bad in [
            &br#"{}"#[..],
            br#"{"ids":[]}"#,
            br#"{"all":false}"#,
            br#"{"ids":[1],"all":true}"#,
            br#"{"ids":[0]}"#,
            br#"{"ids":[-1]}"#,
            br#"{"ids":["1"]}"#,
            br#"{"ids":[9007199254740992]}"#,
            br#"{"id":1}"#,
            b"not json",
            b"",
        ] {
            let e = which(bad).unwrap_err();
            assert_eq!(
                e.status,
                StatusCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = format!("{{\"ids\":[{}]}}", vec!["1"; MAX_IDS_PER_ACTION + 1].join(","));
        assert!(which(many.as_bytes()).is_err());
    }
}
