/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/aead-0a0fc128aaeb80ca.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aead-0.6.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aead-0.6.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libaead-0a0fc128aaeb80ca.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aead-0.6.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aead-0.6.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libaead-0a0fc128aaeb80ca.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aead-0.6.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aead-0.6.1/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aead-0.6.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aead-0.6.1/src/../README.md:
