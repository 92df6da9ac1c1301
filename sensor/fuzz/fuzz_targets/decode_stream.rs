//! Arbitrary bytes, cut into arbitrary chunks, through both codecs: no panic, no buffer growth past
//! one frame, and everything consumed at the end of the stream.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use palmgate_sensor::codec::frame::{HEADER_LEN, TRAILER_LEN};
use palmgate_sensor::codec::{HostCodec, SensorCodec};
use tokio_util::codec::Decoder;

const LIMIT: usize = 4096;

fn run<D: Decoder>(mut codec: D, data: &[u8], chunk: usize)
where
    D::Error: std::fmt::Debug,
{
    let mut buffer = BytesMut::new();
    for piece in data.chunks(chunk) {
        buffer.extend_from_slice(piece);
        while codec.decode(&mut buffer).expect("decode never fails the stream").is_some() {}
        assert!(buffer.len() <= HEADER_LEN + LIMIT + TRAILER_LEN + chunk);
    }
    while codec.decode_eof(&mut buffer).expect("decode_eof never fails the stream").is_some() {}
    assert!(buffer.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let chunk = usize::from(first).max(1);
    run(HostCodec::new(LIMIT), rest, chunk);
    run(SensorCodec::new(LIMIT), rest, chunk);
});
