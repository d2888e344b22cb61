//! What every API request goes through: the AAD token (the 401 challenge
//! and its checks), the endpoint id, and the application.

use super::*;

impl State {
    /// Checks the bearer token; the error is the 401 to answer.
    pub(super) fn authenticate(&self, headers: &HeaderMap) -> Result<AccessClaims, Response> {
        let challenge = |error: Option<&str>, message: &str| {
            let mut value = format!(
                r#"Bearer realm="{}", authorization_uri="{}://{}/{}/oauth2/authorize", resource_id="{}""#,
                self.api_host(),
                self.scheme(),
                self.discovery_host(),
                self.config.tenant,
                self.audience()
            );
            if let Some(error) = error {
                value.push_str(&format!(r#", error="{error}""#));
            }
            let mut response = self.error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some(if error.is_some() {
                    "InvalidToken"
                } else {
                    "MissingToken"
                }),
                message,
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(WWW_AUTHENTICATE, v);
            }
            response
        };
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(challenge(None, "an AAD access token is required"));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                challenge(
                    Some("invalid_request"),
                    "the Authorization header is not `Bearer <token>`",
                )
            })?;
        let keys =
            keys().map_err(|_| challenge(Some("invalid_token"), "the emulator has no key"))?;
        let claims: AccessClaims = keys.verify(token).ok_or_else(|| {
            challenge(
                Some("invalid_token"),
                "the token's signature or format is invalid",
            )
        })?;
        let now = self.now_u64();
        if claims.exp <= now {
            return Err(challenge(Some("invalid_token"), "the token has expired"));
        }
        if claims.seq <= self.revoked_up_to.load(Ordering::Relaxed) {
            return Err(challenge(
                Some("invalid_token"),
                "the token has been revoked",
            ));
        }
        if claims.nbf > now.saturating_add(300) {
            return Err(challenge(
                Some("invalid_token"),
                "the token is not valid yet",
            ));
        }
        if claims.aud != self.audience() {
            return Err(challenge(
                Some("invalid_token"),
                &format!(
                    "the token's audience is {:?}; this API accepts {:?}",
                    claims.aud,
                    self.audience()
                ),
            ));
        }
        if claims.tid != self.config.tenant_id {
            return Err(challenge(
                Some("invalid_token"),
                "the token is for another tenant",
            ));
        }
        Ok(claims)
    }

    /// The application of the token and the endpoint named by `endpointId`,
    /// or the 403 to answer.
    pub(super) fn resolve_endpoint(
        &self,
        claims: &AccessClaims,
        endpoint_id: Option<&str>,
    ) -> Result<(&AppConfig, &EndpointConfig), Response> {
        let Some(endpoint_id) = endpoint_id else {
            return Err(self.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                Some("MissingEndpointId"),
                "the endpointId query parameter is required",
            ));
        };
        let not_found = || {
            self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("ApplicationNotFound"),
                &format!("no application endpoint {endpoint_id} is configured for this application in the tenant"),
            )
        };
        let app = self.app_by_client(&claims.appid).ok_or_else(not_found)?;
        if !app.consented {
            return Err(self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                Some("ApplicationNotConsented"),
                "the tenant admin has not consented to this application",
            ));
        }
        let endpoint = app
            .endpoints
            .iter()
            .find(|e| e.sip.eq_ignore_ascii_case(endpoint_id))
            .ok_or_else(not_found)?;
        Ok((app, endpoint))
    }

    pub(super) fn api_prelude(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(AccessClaims, &AppConfig, &EndpointConfig), Response> {
        if host_of(uri, headers).as_deref() != Some(&self.api_host()) {
            return Err(self.misdirected(uri, headers));
        }
        let claims = self.authenticate(headers)?;
        let endpoint_id = query_param(query, "endpointId");
        let (app, endpoint) = self.resolve_endpoint(&claims, endpoint_id.as_deref())?;
        Ok((claims, app, endpoint))
    }
}
