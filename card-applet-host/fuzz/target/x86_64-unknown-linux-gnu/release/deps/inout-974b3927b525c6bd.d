/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/inout-974b3927b525c6bd.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/errors.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/inout.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/inout_buf.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/reserved.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libinout-974b3927b525c6bd.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/errors.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/inout.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/inout_buf.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/reserved.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libinout-974b3927b525c6bd.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/errors.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/inout.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/inout_buf.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/reserved.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/errors.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/inout.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/inout_buf.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/inout-0.2.6/src/reserved.rs:
