//! A station's events: the enrolment station (`enrol.*`) and the card tools (`card.erased`)
//! publish on `<prefix>/<station>/event/<kind>` like a gate, but keep no outbox. Their event ids
//! are the publication time in Unix milliseconds plus the event's position (increasing per
//! station), and each publication waits for every PUBACK.

use palmgate_card::host::ReceiptBundle;

use crate::event::{CardId, ErasureReceipt, Event, EventKind, NewEvent, Outcome, Timestamp};
use crate::mqtt::Topics;
use crate::mqtt::oneshot::{self, Message, OneShotError, OneShotOptions};

/// Why a station's events could not be made or published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StationError {
    /// The clock is before 1970: no event id.
    #[error("clock before 1970")]
    Clock,
    /// The receipt carries no card id.
    #[error("receipt without a card id")]
    ReceiptWithoutCard,
    /// The broker did not take the events.
    #[error(transparent)]
    Publish(#[from] OneShotError),
}

/// Publishes a station's events through a broker.
#[derive(Debug)]
pub struct EventPublisher {
    options: OneShotOptions,
    prefix: String,
    station: String,
}

impl EventPublisher {
    /// Publishes as `station` under `prefix` through the broker of `options` (the caller has
    /// checked that `prefix` and `station` are valid topic levels).
    pub fn new(options: OneShotOptions, prefix: String, station: String) -> Self {
        Self {
            options,
            prefix,
            station,
        }
    }

    /// The station id (the events' `gate`).
    pub fn station(&self) -> &str {
        &self.station
    }

    /// The topic prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The broker's connection options.
    pub fn options(&self) -> &OneShotOptions {
        &self.options
    }

    /// The messages for `events`, numbered from `first_id` in order.
    pub fn messages(&self, events: Vec<NewEvent>, first_id: u64) -> Vec<Message> {
        let topics = Topics::new(&self.prefix, &self.station);
        events
            .into_iter()
            .zip(first_id..)
            .map(|(event, id)| {
                let event = event.into_event(id, &self.station);
                Message {
                    topic: topics.event(&event.kind),
                    payload: event.to_json(),
                    retain: false,
                }
            })
            .collect()
    }

    /// Publishes `events` in order with QoS 1, numbered from now in Unix milliseconds, and waits
    /// for every PUBACK. Returns the first id and the messages sent.
    ///
    /// # Errors
    /// The clock is before 1970, or the broker did not acknowledge every event.
    pub fn publish_events(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<(u64, Vec<Message>), StationError> {
        let first_id = now_id(Timestamp::now())?;
        let messages = self.messages(events, first_id);
        oneshot::publish_blocking(&self.options, &messages)?;
        Ok((first_id, messages))
    }
}

fn now_id(now: Timestamp) -> Result<u64, StationError> {
    u64::try_from(now.unix_ms()).map_err(|_| StationError::Clock)
}

/// The `card.erased` event of a deletion receipt, before it gets its id and station.
///
/// # Errors
/// The receipt carries no card id.
pub fn erased_new_event(bundle: &ReceiptBundle, now: Timestamp) -> Result<NewEvent, StationError> {
    let fields = bundle.receipt.fields();
    let card_id = CardId::new(&fields.card_id).ok_or(StationError::ReceiptWithoutCard)?;
    Ok(NewEvent::new(EventKind::CardErased, now)
        .card(card_id)
        .result(Outcome::Info)
        .detail(format!("{} slot(s) erased", fields.slots_erased))
        .receipt(ErasureReceipt {
            bundle: hex::encode(bundle.encode()),
            erase_counter: fields.erase_counter,
            timestamp: fields.gate_timestamp,
            slots_erased: fields.slots_erased,
        }))
}

/// The `card.erased` event of a receipt as `station` publishes it alone: its id is `now` in Unix
/// milliseconds.
///
/// # Errors
/// The clock is before 1970 or the receipt carries no card id.
pub fn erased_event(
    bundle: &ReceiptBundle,
    station: &str,
    now: Timestamp,
) -> Result<Event, StationError> {
    let id = now_id(now)?;
    Ok(erased_new_event(bundle, now)?.into_event(id, station))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher() -> EventPublisher {
        let options = OneShotOptions::new("mqtt://127.0.0.1:1", "test").expect("options");
        EventPublisher::new(options, "site".to_string(), "desk-1".to_string())
    }

    #[test]
    fn events_are_numbered_in_order_on_the_stations_event_topics() {
        let now = Timestamp::from_unix_ms(1_795_575_790_123);
        let events = vec![
            NewEvent::new(EventKind::EnrolConsent, now).result(Outcome::Info),
            NewEvent::new(EventKind::EnrolCompleted, now).result(Outcome::Accepted),
        ];
        let messages = publisher().messages(events, 1_795_575_790_123);
        let topics: Vec<_> = messages.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "site/desk-1/event/enrol.consent",
                "site/desk-1/event/enrol.completed"
            ]
        );
        let ids: Vec<_> = messages
            .iter()
            .map(|m| Event::from_json(&m.payload).expect("json"))
            .map(|event| (event.id, event.gate))
            .collect();
        assert_eq!(
            ids,
            [
                (1_795_575_790_123, "desk-1".to_string()),
                (1_795_575_790_124, "desk-1".to_string())
            ]
        );
        assert!(messages.iter().all(|m| !m.retain));
    }

    #[test]
    fn an_unreachable_broker_is_an_error_not_a_silent_loss() {
        let now = Timestamp::now();
        let result = publisher().publish_events(vec![NewEvent::new(EventKind::EnrolConsent, now)]);
        assert!(
            matches!(result, Err(StationError::Publish(_))),
            "{result:?}"
        );
    }
}
