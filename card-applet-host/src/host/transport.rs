//! The one transport primitive, and the in-process transport that runs the applet directly.

use crate::applet::{Applet, Clock, ResponseBuffer, Storage};
use crate::host::error::TransportError;

/// A channel to a card: sends one command APDU, returns the response APDU (data then SW1 SW2).
///
/// Chaining, GET RESPONSE, extended length and status words are handled above this trait, once
/// (`host::apdu::exchange`).
pub trait CardTransport {
    /// Exchanges one APDU.
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: CardTransport + ?Sized> CardTransport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
}

impl<T: CardTransport + ?Sized> CardTransport for Box<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
}

/// The applet in this process (tests, benchmarks, the virtual card).
pub struct InProcessTransport<S, R, C> {
    applet: Applet<S, R, C>,
    response: ResponseBuffer,
}

impl<S, R, C> std::fmt::Debug for InProcessTransport<S, R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessTransport")
            .field("applet", &self.applet)
            .finish()
    }
}

impl<S: Storage, R: rand_core::CryptoRng, C: Clock> InProcessTransport<S, R, C> {
    /// Wraps an applet.
    pub fn new(applet: Applet<S, R, C>) -> Self {
        Self {
            applet,
            response: ResponseBuffer::new(),
        }
    }

    /// The applet.
    pub fn applet(&self) -> &Applet<S, R, C> {
        &self.applet
    }

    /// The applet, mutably (e.g. to simulate a power cycle with [`Applet::reset`]).
    pub fn applet_mut(&mut self) -> &mut Applet<S, R, C> {
        &mut self.applet
    }
}

impl<S: Storage, R: rand_core::CryptoRng, C: Clock> CardTransport for InProcessTransport<S, R, C> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let status = self.applet.process(command, &mut self.response);
        let mut out = Vec::with_capacity(self.response.as_slice().len() + 2);
        out.extend_from_slice(self.response.as_slice());
        out.extend_from_slice(&status.to_bytes());
        Ok(out)
    }
}
