/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/ff-c143eb9a68f9aab9.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/batch.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/helpers.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libff-c143eb9a68f9aab9.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/batch.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/helpers.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libff-c143eb9a68f9aab9.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/batch.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/helpers.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/batch.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ff-0.14.0/src/helpers.rs:
