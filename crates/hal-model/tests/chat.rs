//! The chat's events and resources, read from the shapes chat-notes.md
//! records: both namespaces, `started` or `completed` for an incoming
//! message, both callback-context spellings, both display-name fields,
//! `/Date()/` or RFC 3339 times, data-URI bodies with `+` for spaces.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use hal_model::{
    AcceptAndBridgeInput, AnonApplicationInput, CallbackAnswer, Conversation, ConversationState,
    Direction, EventType, Events, InvitationState, Message, MessagingInvitation, Namespace,
    OperationStatus, ParseErrorKind, Rel, UcwaApplication, chat_names, from_slice, to_vec,
};

/// The incoming chat (step 6), as chat-notes.md writes it from the
/// recorded shape, with `PREFIX` for the namespace.
const INCOMING: &str = r#"{
  "_links": {"self": {"href": "/platformservice/tgt-8c81/v1/applications/1627259584/events?ack=1&key=k"},
             "next": {"href": "/platformservice/tgt-8c81/v1/applications/1627259584/events?ack=2&key=k"}},
  "sender": [{
    "rel": "PREFIXcommunication",
    "href": "/platformservice/v1/applications/1627259584/communication?endpointId=sip:helpdesk@contoso.com",
    "events": [{
      "link": {"rel": "PREFIXmessagingInvitation", "href": "/inv/1"},
      "type": "started",
      "_embedded": {"PREFIXmessagingInvitation": {
        "direction": "Incoming", "state": "Connecting", "importance": "Normal",
        "operationId": "op-w-1", "threadId": "AdJrBgU25DrC5QvbS0GP/SoXvvDHpA==",
        "subject": "Order question", "to": "sip:helpdesk@contoso.com",
        "_links": {
          "self": {"href": "/inv/1"},
          "PREFIXconversation": {"href": "/conv/p2p?endpointId=sip:helpdesk@contoso.com"},
          "PREFIXdecline": {"href": "/inv/1/decline?endpointId=x"},
          "PREFIXacceptAndBridge": {"href": "/inv/1/acceptAndBridge?endpointId=x"},
          "PREFIXstartAdhocMeeting": {"href": "/meetings/startAdhocMeeting?endpointId=x"},
          "customContent": {"href": "data:foo/foo,ThisIsARandomCustomContent"}
        },
        "_embedded": {
          "PREFIXfrom": {"uri": "sip:1546268894@anonymous.invalid", "name": "Jane",
                         "rel": "PREFIXparticipant", "_links": {"self": {"href": "/p/1"}}}
        },
        "rel": "PREFIXmessagingInvitation"
      }}
    }]
  }],
  "baseuri": "https://webpoolbl20r04.infra.lync.com"
}"#;

#[test]
fn the_incoming_invitation_reads_the_same_in_both_namespaces() {
    for ns in Namespace::ALL {
        let body = INCOMING.replace("PREFIX", ns.prefix());
        let events: Events = from_slice(body.as_bytes()).unwrap();
        assert_eq!(
            events.baseuri.as_deref(),
            Some("https://webpoolbl20r04.infra.lync.com")
        );
        assert!(events.next().unwrap().href.ends_with("ack=2&key=k"));
        assert_eq!(events.len(), 1);
        let (sender, event) = events.iter().next().unwrap();
        assert!(sender.rel.has_local_name("communication"));
        assert_eq!(event.kind, EventType::Started);
        assert!(event.is_about(chat_names::MESSAGING_INVITATION));
        let invitation = event.target_as::<MessagingInvitation>().unwrap();
        assert_eq!(invitation.direction(), Some(Direction::Incoming));
        assert_eq!(invitation.state(), Some(InvitationState::Connecting));
        assert_eq!(invitation.operation_id(), Some("op-w-1"));
        assert_eq!(invitation.subject(), Some("Order question"));
        assert!(
            invitation
                .accept_and_bridge()
                .unwrap()
                .href
                .contains("acceptAndBridge")
        );
        assert!(invitation.start_adhoc_meeting().is_some());
        assert!(invitation.decline().is_some());
        assert!(
            invitation
                .conversation()
                .unwrap()
                .href
                .starts_with("/conv/p2p")
        );
        let from = invitation.from_participant().unwrap();
        assert_eq!(from.name(), Some("Jane"));
        assert_eq!(from.uri(), Some("sip:1546268894@anonymous.invalid"));
        let custom = hal_model::DataUri::parse(&invitation.custom_content().unwrap().href).unwrap();
        assert_eq!(custom.data(), b"ThisIsARandomCustomContent");
        // Written back, it reads the same.
        let again: Events = from_slice(&to_vec(&events)).unwrap();
        assert_eq!(again, events);
    }
}

#[test]
fn an_incoming_message_completed_as_recorded() {
    let body = r#"{"sender":[{"rel":"service:conversation","href":"/conv/conf","events":[
      {"link": {"rel": "service:message", "href": "/conv/conf/messaging/messages/3?endpointId=x"},
       "type": "completed", "status": "Success",
       "_embedded": {"service:message": {
         "direction": "Incoming", "timeStamp": "/Date(1489524122496)/",
         "_links": {"self": {"href": "/messages/3"},
                    "service:participant": {"href": "/participants/anna@contoso.com", "title": "Anna"},
                    "plainMessage": {"href": "data:text/plain;charset=utf-8,Hello+there"}},
         "_embedded": {"service:senderParticipant": [{"uri": "sip:anna@contoso.com", "name": "Anna (Support)", "rel": "service:participant"}]},
         "rel": "service:message"}}}]}]}"#;
    let events: Events = from_slice(body.as_bytes()).unwrap();
    let (_, event) = events.iter().next().unwrap();
    assert_eq!(event.kind, EventType::Completed);
    assert_eq!(event.status, Some(OperationStatus::Success));
    let message = Message::from(event.target().unwrap().clone());
    assert_eq!(message.direction(), Some(Direction::Incoming));
    assert_eq!(
        message.body().unwrap().unwrap().text().unwrap(),
        "Hello there"
    );
    assert_eq!(message.sender_name(), Some("Anna (Support)"));
    let at = message.time_stamp().unwrap().unwrap();
    let rfc = hal_model::ExpiryTime::parse("2017-03-14T20:42:02.496Z").unwrap();
    assert_eq!(at.instant(), rfc.instant());
}

#[test]
fn a_ucwa_poll_with_typing_then_a_started_message() {
    let body = r#"{
      "_links": {"self": {"href": "/ucwa/psanon/v1/applications/1/events?ack=20&key=k"},
                 "next": {"href": "/ucwa/psanon/v1/applications/1/events?ack=21&key=k"}},
      "sender": [{
        "rel": "conversation", "href": "/ucwa/psanon/v1/applications/1/communication/conversations/c1",
        "events": [
          {"link": {"rel": "participant", "href": "/c1/participants/p7", "title": "Anna (Support)"},
           "in": {"rel": "typingParticipants", "href": "/c1/participants/typingParticipants"},
           "type": "added"},
          {"link": {"rel": "message", "href": "/c1/messaging/messages/5"},
           "type": "started",
           "_embedded": {"message": {"direction": "Incoming", "timeStamp": "2016-12-15T20:05:08.631Z",
             "_links": {"self": {"href": "/c1/messaging/messages/5"},
                        "participant": {"href": "/c1/participants/p7", "title": "Anna (Support)"},
                        "plainMessage": {"href": "data:text/plain;charset=utf-8,How+can+I+help%3f"}},
             "rel": "message"}}}]}]}"#;
    let events: Events = from_slice(body.as_bytes()).unwrap();
    let all: Vec<_> = events.iter().map(|(_, e)| e).collect();
    assert!(all[0].is_about(chat_names::PARTICIPANT));
    assert!(all[0].is_in(chat_names::TYPING_PARTICIPANTS));
    assert_eq!(all[0].link.title.as_deref(), Some("Anna (Support)"));
    assert!(all[0].target().is_none());
    let message = Message::from(all[1].target().unwrap().clone());
    assert_eq!(
        message.body().unwrap().unwrap().text().unwrap(),
        "How can I help?"
    );
    assert_eq!(message.sender_name(), Some("Anna (Support)"));
    assert!(message.time_stamp().unwrap().is_ok());
    // Bare rels are not the API's namespaced ones.
    assert_ne!(all[1].link.rel, Rel::from("service:message"));
}

#[test]
fn the_end_a_heartbeat_and_an_unknown_event() {
    let end = r#"{"sender":[{"rel":"communication","href":"/communication","events":[{"link":{"rel":"conversation","href":"/conversations/c1"},"type":"deleted"}]}],"_links":{"next":{"href":"/e?ack=3"}}}"#;
    let events: Events = from_slice(end.as_bytes()).unwrap();
    let (_, event) = events.iter().next().unwrap();
    assert_eq!(event.kind, EventType::Deleted);
    assert!(event.embedded().is_empty());
    let heartbeat = r#"{"_links":{"self":{"href":"/eventsservice"}},"sender":[],"baseuri":"https://pool/platformservice/v1/applications"}"#;
    let beat: Events = from_slice(heartbeat.as_bytes()).unwrap();
    assert!(beat.is_heartbeat());
    let odd = r#"{"sender":[{"rel":"service:conversation","href":"/c","events":[{"link":{"rel":"service:conversation","href":"/c"},"type":"archived","_embedded":{"service:conversation":{"state":"Parked","activeModalities":["Messaging"]}}}]}]}"#;
    let events: Events = from_slice(odd.as_bytes()).unwrap();
    let (_, event) = events.iter().next().unwrap();
    assert_eq!(event.kind, EventType::Other("archived".to_owned()));
    let conversation = Conversation::from(event.target().unwrap().clone());
    assert_eq!(
        conversation.state(),
        Some(ConversationState::Other("Parked".to_owned()))
    );
    assert_eq!(conversation.active_modalities(), vec!["Messaging"]);
}

#[test]
fn a_failed_operation_keeps_its_reason() {
    let body = r#"{"sender":[{"rel":"service:communication","href":"/c","events":[{"link":{"rel":"service:participantInvitation","href":"/pi/1"},"type":"completed","status":"Failure","reason":{"code":"Gone","subcode":"Timeout","message":"no answer"}}]}]}"#;
    let events: Events = from_slice(body.as_bytes()).unwrap();
    let (_, event) = events.iter().next().unwrap();
    assert_eq!(event.status, Some(OperationStatus::Failure));
    assert_eq!(
        event.reason.as_ref().unwrap().subcode.as_deref(),
        Some("Timeout")
    );
}

#[test]
fn malformed_envelopes_name_what_was_wrong() {
    let no_href = r#"{"sender":[{"rel":"service:conversation","events":[]}]}"#;
    let error = from_slice::<Events>(no_href.as_bytes()).unwrap_err();
    assert_eq!(error.kind(), ParseErrorKind::Data);
    assert!(error.to_string().contains("href"), "{error}");
    let no_type =
        r#"{"sender":[{"rel":"r","href":"/h","events":[{"link":{"rel":"r","href":"/x"}}]}]}"#;
    let error = from_slice::<Events>(no_type.as_bytes()).unwrap_err();
    assert_eq!(error.path(), "sender[0].events[0]");
    assert!(error.to_string().contains("type"), "{error}");
    let not_a_list = r#"{"sender":{"rel":"r"}}"#;
    assert_eq!(
        from_slice::<Events>(not_a_list.as_bytes())
            .unwrap_err()
            .path(),
        "sender"
    );
}

#[test]
fn both_callback_context_spellings_and_both_display_name_fields() {
    for body in [
        r#"{"callbackContext":"chat-7"}"#,
        r#"{"CallbackContext":"chat-7"}"#,
    ] {
        let answer: CallbackAnswer = from_slice(body.as_bytes()).unwrap();
        assert_eq!(answer.callback_context.as_deref(), Some("chat-7"));
        assert_eq!(
            String::from_utf8(to_vec(&answer)).unwrap(),
            r#"{"callbackContext":"chat-7"}"#
        );
    }
    let empty: CallbackAnswer = from_slice(b"{}").unwrap();
    assert_eq!(empty.callback_context, None);
    for key in ["localUserDisplayName", "impersonatedDisplayName"] {
        let body = format!(r#"{{"onlineMeetingUri":"sip:m@x;gruu","{key}":"Help Desk"}}"#);
        let input: AcceptAndBridgeInput = from_slice(body.as_bytes()).unwrap();
        assert_eq!(input.local_user_display_name.as_deref(), Some("Help Desk"));
    }
    let participant = hal_model::Participant::from(
        from_slice::<hal_model::Resource>(br#"{"displayName":"Anna","uri":"sip:anna@x"}"#).unwrap(),
    );
    assert_eq!(participant.name(), Some("Anna"));
}

#[test]
fn the_anonymous_application_body_is_read_in_any_case() {
    let pascal =
        br#"{"AnonymousDisplayName":"Jane","UserAgent":"chat-widget/1.0","Culture":"en-US"}"#;
    let input: AnonApplicationInput = from_slice(pascal).unwrap();
    assert_eq!(input.anonymous_display_name.as_deref(), Some("Jane"));
    assert_eq!(input.culture, "en-US");
    let missing =
        from_slice::<AnonApplicationInput>(br#"{"anonymousDisplayName":"Jane","culture":"en-us"}"#)
            .unwrap_err();
    assert!(missing.to_string().contains("userAgent"), "{missing}");
    let twice =
        from_slice::<AnonApplicationInput>(br#"{"culture":"a","Culture":"b","userAgent":"u"}"#)
            .unwrap_err();
    assert!(twice.to_string().contains("duplicate"), "{twice}");
    let wrong =
        from_slice::<AnonApplicationInput>(br#"{"culture":7,"userAgent":"u"}"#).unwrap_err();
    assert!(wrong.to_string().contains("culture"), "{wrong}");
}

#[test]
fn the_anonymous_application_as_recorded() {
    let body = br#"{
      "culture": "en-us", "userAgent": "chat-widget/1.0", "type": "Browser",
      "endpointId": "8d1c", "id": "112409054559",
      "_links": {"self": {"href": "/ucwa/psanon/v1/applications/112409054559"},
                 "events": {"href": "/ucwa/psanon/v1/applications/112409054559/events?ack=14&key=k"}},
      "_embedded": {
        "me": {"uri": "sip:1546268894@anonymous.invalid", "name": "Jane", "rel": "me"},
        "communication": {"supportedMessageFormats": ["Plain"],
          "_links": {"startMessaging": {"href": "/ucwa/psanon/v1/applications/112409054559/communication/messagingInvitations", "revision": "2"}},
          "rel": "communication", "etag": "960382518"}},
      "rel": "application", "etag": "1512544136", "expires": "/Date(1466181726193)/"}"#;
    let app: UcwaApplication = from_slice(body).unwrap();
    assert_eq!(app.id(), Some("112409054559"));
    assert_eq!(app.endpoint_id(), Some("8d1c"));
    assert!(app.events().unwrap().href.contains("ack=14"));
    assert!(
        app.start_messaging()
            .unwrap()
            .href
            .ends_with("/messagingInvitations")
    );
    assert_eq!(app.me().unwrap().name(), Some("Jane"));
}
