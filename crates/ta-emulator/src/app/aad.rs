//! Azure AD's token endpoints, v1 and v2: client secret or certificate
//! assertion.

use super::*;

/// Both token endpoints: the version is read from the path.
pub(super) async fn aad_token(
    AxState(state): AxState<Shared>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = state.endpoint_url(&uri, &headers);
    let v2 = uri.path().ends_with("/oauth2/v2.0/token");
    tagged(
        Route::AadToken,
        state.aad(&tenant, &endpoint, &headers, &body, v2),
    )
}

impl State {
    pub(super) fn aad_error(
        &self,
        status: StatusCode,
        error: &str,
        code: u64,
        message: &str,
    ) -> Response {
        let correlation = self.next_correlation();
        let trace = self.next_correlation();
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        self.body(
            status,
            &json!({
                "error": error,
                "error_description": format!(
                    "AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
                ),
                "error_codes": [code],
                "timestamp": timestamp,
                "trace_id": trace,
                "correlation_id": correlation,
            }),
        )
    }

    /// Checks a client assertion; the error is the answer to send.
    pub(super) fn check_assertion(
        &self,
        app: &AppConfig,
        assertion: &str,
        assertion_type: Option<&str>,
        endpoint: &str,
    ) -> Result<(), Response> {
        if assertion_type != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
            return Err(self.aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type' (urn:ietf:params:oauth:client-assertion-type:jwt-bearer).",
            ));
        }
        let Some(certificate) = app.certificate_pem.as_deref() else {
            return Err(self.aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700027,
                "Client assertion failed signature validation: the application has no registered certificate.",
            ));
        };
        let now = self.now_u64();
        let (jti, expires) =
            crate::tokens::verify_assertion(assertion, certificate, &app.client_id, endpoint, now)
                .map_err(|(code, message)| {
                    self.aad_error(StatusCode::UNAUTHORIZED, "invalid_client", code, &message)
                })?;
        let fresh = self
            .assertion_ids
            .lock()
            .map(|mut seen| {
                let fresh = seen.get(&jti, now).is_none();
                if fresh {
                    seen.insert(jti, (), expires, now);
                }
                fresh
            })
            .unwrap_or(false);
        if !fresh {
            return Err(self.aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700025,
                "The client assertion was already used (its jti is replayed).",
            ));
        }
        Ok(())
    }

    /// The URL a request was sent to, without its query (a client
    /// assertion's `aud`).
    pub(super) fn endpoint_url(&self, uri: &Uri, headers: &HeaderMap) -> String {
        format!(
            "{}://{}{}",
            self.scheme(),
            host_of(uri, headers).unwrap_or_default(),
            uri.path()
        )
    }

    pub(super) fn aad(
        &self,
        tenant: &str,
        endpoint: &str,
        headers: &HeaderMap,
        body: &[u8],
        v2: bool,
    ) -> Response {
        let bad = StatusCode::BAD_REQUEST;
        if !tenant.eq_ignore_ascii_case(&self.config.tenant)
            && !tenant.eq_ignore_ascii_case(&self.config.tenant_id)
        {
            return self.aad_error(
                bad,
                "invalid_request",
                90002,
                &format!("Tenant '{tenant}' not found."),
            );
        }
        let form_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return self.aad_error(
                bad,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let param = |name: &str| form.get(name).map(String::as_str);
        match param("grant_type") {
            None => {
                return self.aad_error(
                    bad,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'grant_type'.",
                );
            }
            Some("client_credentials") => {}
            Some(other) => {
                return self.aad_error(
                    bad,
                    "unsupported_grant_type",
                    70003,
                    &format!("The app requested an unsupported grant type '{other}'."),
                );
            }
        }
        let Some(client_id) = param("client_id") else {
            return self.aad_error(
                bad,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            );
        };
        let Some(app) = self.app_by_client(client_id) else {
            return self.aad_error(
                bad,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'.",
                    self.config.tenant
                ),
            );
        };
        let audience = self.audience();
        let resource = if v2 {
            let Some(scope) = param("scope") else {
                return self.aad_error(
                    bad,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'scope'.",
                );
            };
            scope.strip_suffix("/.default").unwrap_or(scope).to_owned()
        } else {
            let Some(resource) = param("resource") else {
                return self.aad_error(
                    bad,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'resource'.",
                );
            };
            resource.to_owned()
        };
        if resource.trim_end_matches('/') != audience {
            return self.aad_error(
                bad,
                "invalid_resource",
                500011,
                &format!(
                    "The resource principal named {resource} was not found in the tenant named {}.",
                    self.config.tenant
                ),
            );
        }
        match (param("client_secret"), param("client_assertion")) {
            (Some(secret), _) => {
                if app.client_secret.as_deref() != Some(secret) {
                    return self.aad_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                    );
                }
            }
            (None, Some(assertion)) => {
                if let Err(response) =
                    self.check_assertion(app, assertion, param("client_assertion_type"), endpoint)
                {
                    return response;
                }
            }
            (None, None) => {
                return self.aad_error(
                    bad,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                );
            }
        }
        let now = self.now_u64();
        let lifetime = self.config.aad_token_lifetime_secs;
        let claims = AccessClaims {
            aud: audience.clone(),
            iss: format!("https://sts.windows.net/{}/", self.config.tenant_id),
            tid: self.config.tenant_id.clone(),
            appid: app.client_id.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(lifetime),
            jti: self.next_correlation(),
            seq: self.token_seq.fetch_add(1, Ordering::Relaxed) + 1,
        };
        let Ok(token) = keys().and_then(|k| k.sign(&claims)) else {
            return self.aad_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "temporarily_unavailable",
                50000,
                "The emulator could not sign the token.",
            );
        };
        Stats::bump(&self.stats.aad_tokens_issued);
        if v2 {
            self.body(
                StatusCode::OK,
                &json!({
                    "token_type": "Bearer",
                    "expires_in": lifetime,
                    "ext_expires_in": lifetime,
                    "access_token": token,
                }),
            )
        } else {
            self.body(
                StatusCode::OK,
                &json!({
                    "token_type": "Bearer",
                    "expires_in": lifetime.to_string(),
                    "ext_expires_in": lifetime.to_string(),
                    "expires_on": now.saturating_add(lifetime).to_string(),
                    "not_before": now.to_string(),
                    "resource": audience,
                    "access_token": token,
                }),
            )
        }
    }
}
