/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/group-5988059a76d6d09e.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/cofactor.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/prime.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libgroup-5988059a76d6d09e.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/cofactor.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/prime.rs

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libgroup-5988059a76d6d09e.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/cofactor.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/prime.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/cofactor.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/group-0.14.0/src/prime.rs:
