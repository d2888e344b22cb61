//! `POST …/anonApplicationTokens`: the widget token, its session id and
//! origins.

use super::*;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MintBody {
    application_session_id: Option<serde_json::Value>,
    allowed_origins: Option<serde_json::Value>,
}

pub(super) async fn mint(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let response = match state.api_prelude(&uri, &headers, query.as_deref()) {
        Err(response) => response,
        Ok((_, app, endpoint)) => state.mint(&id, app, endpoint, &headers, &body),
    };
    tagged(Route::Mint, response)
}

impl State {
    pub(super) fn bad_request(&self, message: &str) -> Response {
        self.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            Some("InvalidRequest"),
            message,
        )
    }

    pub(super) fn mint(
        &self,
        id: &str,
        app: &AppConfig,
        endpoint: &EndpointConfig,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        if !app.application_id.eq_ignore_ascii_case(id) {
            return self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("ApplicationNotFound"),
                &format!("application {id} does not belong to the token's application"),
            );
        }
        if !endpoint.anon_tokens {
            return self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("AnonymousTokensNotConsented"),
                "the tenant has not consented to anonymous application tokens for this endpoint",
            );
        }
        let json_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json_type {
            return self.error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                None,
                "the body must be application/json",
            );
        }
        let parsed: MintBody = match hal_model::from_slice(body) {
            Ok(parsed) => parsed,
            Err(e) => return self.bad_request(&format!("the body is not the expected JSON: {e}")),
        };
        let session = match parsed.application_session_id {
            Some(serde_json::Value::String(s)) => s,
            Some(_) => return self.bad_request("applicationSessionId must be a string"),
            None => return self.bad_request("applicationSessionId is required"),
        };
        let length = session.chars().count();
        if !(1..=100).contains(&length) {
            return self.bad_request(&format!(
                "applicationSessionId has {length} characters; it must have 1 to 100"
            ));
        }
        let origins = match parsed.allowed_origins {
            Some(serde_json::Value::String(s)) => s,
            Some(_) => return self.bad_request("allowedOrigins must be a string"),
            None => return self.bad_request("allowedOrigins is required"),
        };
        if origins.chars().count() > 500 {
            return self.bad_request(&format!(
                "allowedOrigins has {} characters; at most 500 are accepted",
                origins.chars().count()
            ));
        }
        if let Err(message) = check_origins(&origins) {
            return self.bad_request(&message);
        }
        let now = self.now_u64();
        let exp = now.saturating_add(self.config.psat_lifetime_secs);
        if let Ok(mut sessions) = self.sessions.lock() {
            match sessions.get(&session, now) {
                Some((owner, known)) if owner != &app.application_id || known != &origins => {
                    return self.error(
                        StatusCode::CONFLICT,
                        "Conflict",
                        Some("AlreadyExists"),
                        "this applicationSessionId was already used by another application or with other allowed origins",
                    );
                }
                Some(_) => {}
                None => {
                    sessions.insert(
                        session.clone(),
                        (app.application_id.clone(), origins.clone()),
                        exp,
                        now,
                    );
                }
            }
        }
        let claims = PsatClaims {
            nbf: now,
            exp,
            asi: session,
            aeu: endpoint.sip.clone(),
            ao: origins,
            app: app.application_id.clone(),
        };
        let Ok(jwt) = keys().and_then(|k| k.sign(&claims)) else {
            return self.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceFailure",
                None,
                "the emulator could not sign the token",
            );
        };
        Stats::bump(&self.stats.psat_tokens_minted);
        let at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(exp).unwrap_or(i64::MAX))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let expiry = ExpiryTime::with_format(
            at,
            match self.config.quirks.expiry {
                ExpiryStyle::Rfc3339 => ExpiryFormat::Rfc3339,
                ExpiryStyle::MicrosoftJson => ExpiryFormat::MicrosoftJson,
            },
        );
        let ps = self.ps();
        let raw = self.endpoint_in_href(&endpoint.sip, false);
        let resource = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!(
                    "{}://[::1]:{}/{ps}/v1/applications/{}/anonApplicationTokens?endpointId={raw}",
                    self.scheme(),
                    self.port,
                    app.application_id
                )),
            )
            .with_link(
                self.rel(names::DISCOVER),
                Link::new(format!(
                    "{}/{ps}/discover?anonymousContext=psat%253d{jwt}",
                    self.widget_origin()
                )),
            )
            .with_rel(self.rel(names::ANON_APPLICATION_TOKEN));
        let answer =
            AnonApplicationToken::new(PsatToken::new(format!("psat={jwt}")), expiry, resource);
        self.body(StatusCode::OK, &answer)
    }
}

/// Checks a `;`-separated list of web origins.
pub(super) fn check_origins(origins: &str) -> Result<(), String> {
    if origins.trim().is_empty() {
        return Err("allowedOrigins must list at least one origin".to_owned());
    }
    for origin in origins.split(';') {
        let fail = |why: &str| Err(format!("allowedOrigins: {origin:?} {why}"));
        let Some((scheme, authority)) = origin.split_once("://") else {
            return fail("is not scheme://host[:port]");
        };
        if scheme != "https" && scheme != "http" {
            return fail("must be http or https");
        }
        if authority.is_empty()
            || authority
                .chars()
                .any(|c| matches!(c, '/' | '?' | '#' | '@' | '*' | ' ' | '\\'))
        {
            return fail("must be scheme://host[:port] with no path, query, user info or wildcard");
        }
        if url::Url::parse(origin).is_err() {
            return fail("has an invalid host or port");
        }
    }
    Ok(())
}
