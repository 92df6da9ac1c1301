/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/hkdf-e79bb410d8ef3108.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/errors.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/hmac_impl.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libhkdf-e79bb410d8ef3108.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/errors.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/hmac_impl.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libhkdf-e79bb410d8ef3108.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/errors.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/hmac_impl.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/errors.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/hmac_impl.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hkdf-0.13.0/src/../README.md:
