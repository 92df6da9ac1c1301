/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/rfc6979-e65dee2684724861.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/hmac_drbg.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/librfc6979-e65dee2684724861.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/hmac_drbg.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/librfc6979-e65dee2684724861.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/hmac_drbg.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/hmac_drbg.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rfc6979-0.6.0/src/../README.md:
