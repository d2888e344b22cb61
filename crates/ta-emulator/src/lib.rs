//! An emulator of the Trusted Application API and of Azure AD.
//!
//! This crate will serve the API's discovery, applications, application,
//! `anonApplicationTokens` and anonymous discovery resources, and AAD's token
//! endpoints, over HTTPS with a generated CA, with the quirks and the faults
//! of `shared/protocol-notes.md`. It writes its answers with [`hal_model`]'s
//! types. It exports nothing yet.
