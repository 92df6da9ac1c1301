/work/main/card-applet-host/fuzz/target/release/deps/zeroize_derive-d7634b5c46e553a6.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/zeroize_derive-1.5.0/src/lib.rs

/work/main/card-applet-host/fuzz/target/release/deps/libzeroize_derive-d7634b5c46e553a6.so: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/zeroize_derive-1.5.0/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/zeroize_derive-1.5.0/src/lib.rs:
