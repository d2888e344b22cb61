//! An `--agent` spec: `sip:anna@contoso.com=Anna (Support)`.

use ta_protocol::chat::Agent;

/// The agent an `--agent` spec (a flag, `TA_AGENTS` or the `agents` key)
/// names: the SIP URI, `=`, the name the visitor sees. Without a name, the
/// URI's user and domain are the name. The URI is lower-cased; its `sip:`
/// prefix may be written in any case.
///
/// # Errors
///
/// A message quoting the spec when it does not start with `sip:` followed
/// by something.
pub fn parse_agent(text: &str) -> Result<Agent, String> {
    let (uri, name) = text.split_once('=').unwrap_or((text, ""));
    let (uri, name) = (uri.trim(), name.trim());
    let rest = uri
        .get(..4)
        .filter(|scheme| scheme.eq_ignore_ascii_case("sip:"))
        .and_then(|_| uri.get(4..))
        .filter(|rest| !rest.is_empty());
    let Some(rest) = rest else {
        return Err(format!(
            "agent {text:?}: give `sip:<user>@<domain>=<name shown>`"
        ));
    };
    let name = if name.is_empty() { rest } else { name };
    Ok(Agent::new(uri.to_ascii_lowercase(), name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::parse_agent;

    #[test]
    fn a_spec_names_the_uri_and_the_name_shown() {
        let agent = parse_agent(" sip:Anna@Contoso.com = Anna (Support) ").unwrap();
        assert_eq!(agent.uri, "sip:anna@contoso.com");
        assert_eq!(agent.display_name, "Anna (Support)");
    }

    #[test]
    fn without_a_name_the_address_is_shown_however_the_scheme_is_written() {
        assert_eq!(
            parse_agent("SIP:bob@x.test").unwrap().display_name,
            "bob@x.test"
        );
        // Only the one scheme is taken off.
        assert_eq!(
            parse_agent("sip:sip:bob@x.test").unwrap().display_name,
            "sip:bob@x.test"
        );
    }

    #[test]
    fn a_spec_without_a_sip_uri_is_refused() {
        for text in ["", "sip:", "sip: =Anna", "anna@x.test=Anna", "sí:x", "=x"] {
            let error = parse_agent(text).unwrap_err();
            assert!(error.contains("sip:<user>@<domain>"), "{text:?}: {error}");
        }
    }
}
