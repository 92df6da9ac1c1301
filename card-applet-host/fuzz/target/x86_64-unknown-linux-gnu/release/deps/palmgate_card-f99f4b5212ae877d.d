/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/palmgate_card-f99f4b5212ae877d.d: /work/main/card-applet-host/src/lib.rs /work/main/card-applet-host/src/applet/mod.rs /work/main/card-applet-host/src/applet/state.rs /work/main/card-applet-host/src/protocol/mod.rs /work/main/card-applet-host/src/protocol/apdu.rs /work/main/card-applet-host/src/protocol/cert.rs /work/main/card-applet-host/src/protocol/identity.rs /work/main/card-applet-host/src/protocol/receipt.rs /work/main/card-applet-host/src/protocol/session.rs /work/main/card-applet-host/src/protocol/status.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libpalmgate_card-f99f4b5212ae877d.rlib: /work/main/card-applet-host/src/lib.rs /work/main/card-applet-host/src/applet/mod.rs /work/main/card-applet-host/src/applet/state.rs /work/main/card-applet-host/src/protocol/mod.rs /work/main/card-applet-host/src/protocol/apdu.rs /work/main/card-applet-host/src/protocol/cert.rs /work/main/card-applet-host/src/protocol/identity.rs /work/main/card-applet-host/src/protocol/receipt.rs /work/main/card-applet-host/src/protocol/session.rs /work/main/card-applet-host/src/protocol/status.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libpalmgate_card-f99f4b5212ae877d.rmeta: /work/main/card-applet-host/src/lib.rs /work/main/card-applet-host/src/applet/mod.rs /work/main/card-applet-host/src/applet/state.rs /work/main/card-applet-host/src/protocol/mod.rs /work/main/card-applet-host/src/protocol/apdu.rs /work/main/card-applet-host/src/protocol/cert.rs /work/main/card-applet-host/src/protocol/identity.rs /work/main/card-applet-host/src/protocol/receipt.rs /work/main/card-applet-host/src/protocol/session.rs /work/main/card-applet-host/src/protocol/status.rs

/work/main/card-applet-host/src/lib.rs:
/work/main/card-applet-host/src/applet/mod.rs:
/work/main/card-applet-host/src/applet/state.rs:
/work/main/card-applet-host/src/protocol/mod.rs:
/work/main/card-applet-host/src/protocol/apdu.rs:
/work/main/card-applet-host/src/protocol/cert.rs:
/work/main/card-applet-host/src/protocol/identity.rs:
/work/main/card-applet-host/src/protocol/receipt.rs:
/work/main/card-applet-host/src/protocol/session.rs:
/work/main/card-applet-host/src/protocol/status.rs:
