//! What stands in front of every dashboard route.
//!
//! - **Password.** When the server has one (`requirepass`), a request must
//!   carry it with HTTP Basic auth: any user name (a browser asks for
//!   one; `default` is the RESP user's), compared in constant time, read
//!   afresh on every request so `CONFIG SET requirepass` applies at once.
//!   Otherwise: 401 with `WWW-Authenticate`, and the browser asks.
//! - **Actions.** A request that changes something (any method but GET
//!   and HEAD) must carry the header `X-Quern-Action: 1`. A page of
//!   another site can make a browser send a form POST here, with the
//!   Basic credentials it remembers, but not with a custom header: that
//!   needs a CORS preflight, which this server never grants. Otherwise:
//!   403.
//! - **Headers.** Every response forbids framing (no clickjacking of the
//!   buttons), caching and content sniffing, and the pages may load
//!   scripts and styles from this server only.
//!
//! `/metrics`, `/health` and `/ready` are not behind this guard: Prometheus
//! and orchestrators' probes poll them without credentials, and they show
//! counts, never a payload.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::request::ApiError;
use crate::http::HttpState;
use crate::password;

/// The header an action must carry, with the value [`ACTION_HEADER_VALUE`].
pub const ACTION_HEADER: &str = "x-quern-action";
/// The value of [`ACTION_HEADER`].
pub const ACTION_HEADER_VALUE: &str = "1";
/// The challenge of a 401: the browser asks for a user and password.
const CHALLENGE: &str = "Basic realm=\"quern\", charset=\"UTF-8\"";
/// Scripts, styles, images and API calls from this server only; no
/// inline script, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The middleware: checks the password and the action header, then runs
/// the route; adds the protective headers to whatever it answers.
pub async fn guard(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let mut response = match check(&state, &method, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refuse(refusal),
    };
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        response = wrong_method(&method, response);
    }
    protect(response.headers_mut());
    response
}

/// axum's own 405 has an empty body: say it in JSON like every other
/// refusal, keeping its `Allow` header.
fn wrong_method(method: &Method, axums: Response) -> Response {
    let mut response = ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed here"),
    }
    .into_response();
    if let Some(allow) = axums.headers().get(header::ALLOW) {
        response.headers_mut().insert(header::ALLOW, allow.clone());
    }
    response
}

/// Why a request may not go on.
fn check(state: &HttpState, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(server) = state.server() else {
        // The password is the loaded server's; until then nothing shows.
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "loading".into(),
        });
    };
    if let Some(expected) = server.settings.requirepass() {
        if !authorized(headers, expected.as_bytes()) {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "authentication required: the server's password, with any user name".into(),
            });
        }
    }
    let reads = method == Method::GET || method == Method::HEAD;
    if !reads && !has_action_header(headers) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!("an action needs the header {ACTION_HEADER}: {ACTION_HEADER_VALUE}"),
        });
    }
    Ok(())
}

/// Whether `headers` carry Basic credentials with password `expected`.
fn authorized(headers: &HeaderMap, expected: &[u8]) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| basic_password(value.as_bytes()))
        .is_some_and(|given| password::matches(expected, &given))
}

/// The password of a Basic `Authorization` header value: what follows
/// the first `:` of the decoded `user:password`.
fn basic_password(value: &[u8]) -> Option<Vec<u8>> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

fn has_action_header(headers: &HeaderMap) -> bool {
    headers
        .get(ACTION_HEADER)
        .is_some_and(|v| v.as_bytes() == ACTION_HEADER_VALUE.as_bytes())
}

/// The refusal's response; a 401 carries the challenge that makes a
/// browser ask for the password.
fn refuse(refusal: ApiError) -> Response {
    let challenge = refusal.status == StatusCode::UNAUTHORIZED;
    let mut response = refusal.into_response();
    if challenge {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
    }
    response
}

fn protect(headers: &mut HeaderMap) {
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(user_password)).into_bytes()
    }

    #[test]
    fn the_password_follows_the_first_colon() {
        assert_eq!(basic_password(&basic("default:s3cret")), Some(b"s3cret".to_vec()));
        assert_eq!(basic_password(&basic(":s3cret")), Some(b"s3cret".to_vec()));
        assert_eq!(basic_password(&basic("ann:a:b")), Some(b"a:b".to_vec()));
        assert_eq!(basic_password(&basic("ann:")), Some(Vec::new()));
        assert_eq!(
            basic_password(format!("basic  {} ", STANDARD.encode("u:p")).as_bytes()),
            Some(b"p".to_vec())
        );
    }

    #[test]
    fn anything_else_carries_no_password() {
        assert_eq!(basic_password(&basic("no-colon")), None);
        assert_eq!(basic_password(b"Bearer abc"), None);
        assert_eq!(basic_password(b"Basic !!!"), None);
        assert_eq!(basic_password(b"Basic"), None);
        assert_eq!(basic_password(b"\xff"), None);
    }

    #[test]
    fn only_the_right_password_is_authorized() {
        let with = |value: &[u8]| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
            headers
        };
        assert!(authorized(&with(&basic("anyone:s3cret")), b"s3cret"));
        assert!(!authorized(&with(&basic("default:s3cre")), b"s3cret"));
        assert!(!authorized(&with(&basic("s3cret:")), b"s3cret"));
        assert!(!authorized(&HeaderMap::new(), b"s3cret"));
    }
}
