/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/wnaf-132418a901f6b057.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/base.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/limb_buffer.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/scalar.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/traits.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libwnaf-132418a901f6b057.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/base.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/limb_buffer.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/scalar.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/traits.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libwnaf-132418a901f6b057.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/base.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/limb_buffer.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/scalar.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/traits.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/base.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/limb_buffer.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/scalar.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/traits.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wnaf-0.14.1/src/../README.md:
