/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/cpubits-f07ccf7e3f8f934b.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cpubits-0.1.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cpubits-0.1.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libcpubits-f07ccf7e3f8f934b.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cpubits-0.1.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cpubits-0.1.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libcpubits-f07ccf7e3f8f934b.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cpubits-0.1.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cpubits-0.1.1/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cpubits-0.1.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cpubits-0.1.1/src/../README.md:
