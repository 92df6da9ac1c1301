/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/aes_gcm-b78123e688de2d72.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aes-gcm-0.11.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aes-gcm-0.11.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libaes_gcm-b78123e688de2d72.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aes-gcm-0.11.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aes-gcm-0.11.1/src/../README.md

/work/main/card-applet-host/fuzz/target/x86_64-unknown-linux-gnu/release/deps/libaes_gcm-b78123e688de2d72.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aes-gcm-0.11.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aes-gcm-0.11.1/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aes-gcm-0.11.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/aes-gcm-0.11.1/src/../README.md:
