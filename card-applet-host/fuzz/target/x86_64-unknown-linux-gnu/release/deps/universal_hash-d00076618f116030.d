/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/universal_hash-d00076618f116030.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/universal-hash-0.6.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/universal-hash-0.6.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libuniversal_hash-d00076618f116030.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/universal-hash-0.6.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/universal-hash-0.6.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libuniversal_hash-d00076618f116030.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/universal-hash-0.6.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/universal-hash-0.6.1/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/universal-hash-0.6.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/universal-hash-0.6.1/src/../README.md:
