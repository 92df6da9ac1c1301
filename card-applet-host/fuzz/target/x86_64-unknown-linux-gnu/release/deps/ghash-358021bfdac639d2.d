/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/ghash-358021bfdac639d2.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ghash-0.6.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ghash-0.6.0/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libghash-358021bfdac639d2.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ghash-0.6.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ghash-0.6.0/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libghash-358021bfdac639d2.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ghash-0.6.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ghash-0.6.0/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ghash-0.6.0/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ghash-0.6.0/src/../README.md:
