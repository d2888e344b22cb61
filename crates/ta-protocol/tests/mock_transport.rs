//! The mockall transport other crates use in their tests (feature `mock`).
#![cfg(feature = "mock")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;

use bytes::Bytes;
use ta_protocol::*;

#[test]
fn the_mock_transport_is_usable_through_an_arc() {
    let mut mock = MockTransport::new();
    mock.expect_send()
        .withf(|req| req.uri() == "https://api.example.com/platformservice/discover")
        .times(1)
        .returning(|_| Err(TransportError::new(TransportErrorKind::Connect, false)));
    let transport: Arc<dyn Transport> = Arc::new(mock);
    let request = http::Request::builder()
        .uri("https://api.example.com/platformservice/discover")
        .body(Bytes::new())
        .unwrap();
    let err = futures_executor::block_on(transport.send(request)).unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::Connect);
    assert!(!err.may_have_been_sent());
    assert!(err.to_string().contains("not sent"));
}
