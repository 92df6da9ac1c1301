//! Fuzz the APDU parser and the whole applet: any byte sequence, split into APDUs, must be
//! answered without panicking (factory state: the fuzzer can also drive personalisation).
//!
//! Run (nightly or `RUSTC_BOOTSTRAP=1`): `cargo fuzz run apdu` in `card-applet-host/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palmgate_card::applet::{Applet, Clock, ResponseBuffer, STATE_LEN, Storage, StorageFailed};
use palmgate_card::protocol::CommandApdu;

struct CountingStorage(usize);

impl Storage for CountingStorage {
    fn store(&mut self, _: &[u8; STATE_LEN]) -> Result<(), StorageFailed> {
        self.0 += 1;
        Ok(())
    }
}

struct Counter(u64);

impl rand_core::TryRng for Counter {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for byte in dst {
            *byte = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Counter {}

struct Zero;

impl Clock for Zero {
    fn now_ms(&mut self) -> u64 {
        0
    }
}

fuzz_target!(|data: &[u8]| {
    // First: the parser alone on the whole input.
    if let Ok(apdu) = CommandApdu::parse(data) {
        assert!(apdu.data.len() <= data.len());
    }
    // Then: the input as a sequence of length-prefixed APDUs into a factory card.
    let mut applet = Applet::factory(CountingStorage(0), Counter(1), Zero);
    let mut response = ResponseBuffer::new();
    let mut rest = data;
    while let [len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (apdu, next) = tail.split_at(len);
        let _ = applet.process(apdu, &mut response);
        rest = next;
    }
});
