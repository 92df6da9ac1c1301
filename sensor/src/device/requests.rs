//! Request bookkeeping for one connection, without I/O: one request in flight at a time, the rest
//! queued; sequence numbers; deadlines from injected time.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::codec::{Envelope, HostMessage, SensorMessage};

/// The request in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// Its sequence number.
    pub seq: u16,
    /// The request.
    pub request: HostMessage,
    /// When it times out.
    pub deadline: Instant,
}

/// What a received message means for the request in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An unsolicited message (sequence 0): presence, frame, or a sensor-wide error.
    Unsolicited,
    /// The answer to the request in flight, which is now done.
    Response(HostMessage),
    /// A response that matches no request in flight (late, after a timeout, or bogus).
    Stray,
}

/// Requests of one connection.
#[derive(Debug)]
pub struct Requests {
    timeout: Duration,
    next_seq: u16,
    queue: VecDeque<HostMessage>,
    in_flight: Option<InFlight>,
}

impl Requests {
    /// An empty tracker whose requests time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            next_seq: 1,
            queue: VecDeque::new(),
            in_flight: None,
        }
    }

    /// Queues a request.
    pub fn push(&mut self, request: HostMessage) {
        self.queue.push_back(request);
    }

    /// Whether a request is in flight.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The deadline of the request in flight.
    pub fn deadline(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|in_flight| in_flight.deadline)
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<&InFlight> {
        self.in_flight.as_ref()
    }

    /// The next request to send, when none is in flight; it becomes the one in flight.
    pub fn next_to_send(&mut self, now: Instant) -> Option<Envelope<HostMessage>> {
        if self.in_flight.is_some() {
            return None;
        }
        let request = self.queue.pop_front()?;
        let seq = self.next_seq;
        // 0 is reserved for unsolicited messages.
        self.next_seq = self.next_seq.checked_add(1).unwrap_or(1);
        self.in_flight = Some(InFlight {
            seq,
            request: request.clone(),
            deadline: now + self.timeout,
        });
        Some(Envelope::new(seq, request))
    }

    /// Classifies a received message.
    pub fn on_message(&mut self, seq: u16, message: &SensorMessage) -> Answer {
        if seq == 0 {
            return Answer::Unsolicited;
        }
        match &self.in_flight {
            Some(in_flight) if in_flight.seq == seq && answers(&in_flight.request, message) => {
                let done = self.in_flight.take().map(|in_flight| in_flight.request);
                done.map_or(Answer::Stray, Answer::Response)
            }
            _ => Answer::Stray,
        }
    }

    /// Drops the request in flight without an answer (one whose silence is itself an answer).
    pub fn give_up(&mut self) -> Option<InFlight> {
        self.in_flight.take()
    }

    /// The request in flight if its deadline has passed.
    pub fn expired(&self, now: Instant) -> Option<&InFlight> {
        self.in_flight
            .as_ref()
            .filter(|in_flight| in_flight.deadline <= now)
    }
}

/// Whether `message` is a possible answer to `request` (an error answers anything).
fn answers(request: &HostMessage, message: &SensorMessage) -> bool {
    matches!(
        (request, message),
        (_, SensorMessage::Error { .. })
            | (HostMessage::GetInfo, SensorMessage::Info(_))
            | (HostMessage::Ping { .. }, SensorMessage::Pong { .. })
            | (HostMessage::GetBands, SensorMessage::Bands(_))
            | (
                HostMessage::StartCapture { .. }
                    | HostMessage::StopCapture
                    | HostMessage::SetIllumination { .. }
                    | HostMessage::StartBurst { .. },
                SensorMessage::Ack
            )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_at_a_time_in_order() {
        let now = Instant::now();
        let mut requests = Requests::new(Duration::from_millis(100));
        requests.push(HostMessage::GetInfo);
        requests.push(HostMessage::StopCapture);
        let first = requests.next_to_send(now).unwrap();
        assert_eq!(first, Envelope::new(1, HostMessage::GetInfo));
        assert!(requests.next_to_send(now).is_none());
        assert_eq!(
            requests.on_message(0, &SensorMessage::Ack),
            Answer::Unsolicited
        );
        // An Ack does not answer GetInfo, nor does a wrong sequence number.
        assert_eq!(requests.on_message(1, &SensorMessage::Ack), Answer::Stray);
        assert_eq!(
            requests.on_message(2, &SensorMessage::Pong { token: 0 }),
            Answer::Stray
        );
        assert!(requests.busy());
        let error = SensorMessage::Error {
            code: crate::codec::SensorErrorCode::Busy,
            message: String::new(),
        };
        assert_eq!(
            requests.on_message(1, &error),
            Answer::Response(HostMessage::GetInfo)
        );
        let second = requests.next_to_send(now).unwrap();
        assert_eq!(second, Envelope::new(2, HostMessage::StopCapture));
        assert_eq!(
            requests.on_message(2, &SensorMessage::Ack),
            Answer::Response(HostMessage::StopCapture)
        );
        assert!(requests.next_to_send(now).is_none());
    }

    #[test]
    fn deadline_and_sequence_wrap() {
        let now = Instant::now();
        let mut requests = Requests::new(Duration::from_millis(100));
        requests.next_seq = u16::MAX;
        requests.push(HostMessage::Ping { token: 1 });
        requests.push(HostMessage::Ping { token: 2 });
        assert_eq!(requests.next_to_send(now).unwrap().seq, u16::MAX);
        assert!(requests.expired(now + Duration::from_millis(99)).is_none());
        assert!(requests.expired(now + Duration::from_millis(100)).is_some());
        requests.on_message(u16::MAX, &SensorMessage::Pong { token: 1 });
        assert_eq!(requests.next_to_send(now).unwrap().seq, 1);
    }
}
